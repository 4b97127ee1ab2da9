"""A form's ``$metadata``: CSDL 4.0 (EDMX) in the layout Central's templater writes (reference §2.3), so
Excel, Power BI and OData client libraries resolve every entity set, complex type and navigation. Enum
members carry explicit values (optional in CSDL; python-odata needs them)."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from rasoat.server.central.schema import EDM_TYPES, ROOT_TABLE, FormSchema, Node, Table, sanitize

SUBMISSION_NS = "org.opendatakit.submission"

_METADATA_TYPE = f"""<Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="{SUBMISSION_NS}">
<ComplexType Name="metadata">
<Property Name="submissionDate" Type="Edm.DateTimeOffset"/>
<Property Name="updatedAt" Type="Edm.DateTimeOffset"/>
<Property Name="deletedAt" Type="Edm.DateTimeOffset"/>
<Property Name="submitterId" Type="Edm.String"/>
<Property Name="submitterName" Type="Edm.String"/>
<Property Name="attachmentsPresent" Type="Edm.Int64"/>
<Property Name="attachmentsExpected" Type="Edm.Int64"/>
<Property Name="status" Type="{SUBMISSION_NS}.Status"/>
<Property Name="reviewState" Type="{SUBMISSION_NS}.ReviewState"/>
<Property Name="deviceId" Type="Edm.String"/>
<Property Name="edits" Type="Edm.Int64"/>
<Property Name="formVersion" Type="Edm.String"/>
</ComplexType>
<EnumType Name="Status">
<Member Name="notDecrypted" Value="0"/>
<Member Name="missingEncryptedFormData" Value="1"/>
</EnumType>
<EnumType Name="ReviewState">
<Member Name="hasIssues" Value="0"/>
<Member Name="edited" Value="1"/>
<Member Name="rejected" Value="2"/>
<Member Name="approved" Value="3"/>
</EnumType>
</Schema>"""

_CAP = "Org.OData.Capabilities.V1"
_CAPABILITIES = "\n".join(
    [
        f'<Annotation Term="{_CAP}.ConformanceLevel" EnumMember="{_CAP}.ConformanceLevelType/Minimal"/>',
        f'<Annotation Term="{_CAP}.BatchSupported" Bool="false"/>',
        f'<Annotation Term="{_CAP}.CountRestrictions"><Record>'
        '<PropertyValue Property="Countable" Bool="true"/></Record></Annotation>',
        f'<Annotation Term="{_CAP}.SortRestrictions"><Record>'
        '<PropertyValue Property="Sortable" Bool="false"/></Record></Annotation>',
        f'<Annotation Term="{_CAP}.ExpandRestrictions"><Record>'
        '<PropertyValue Property="Expandable" Bool="false"/></Record></Annotation>',
    ]
)


def namespace(schema: FormSchema) -> str:
    return f"org.opendatakit.user.{sanitize(schema.form_id)}"


def edmx(schema: FormSchema) -> bytes:
    ns = namespace(schema)
    container = sanitize(schema.form_id)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">',
        "<edmx:DataServices>",
        _METADATA_TYPE,
        f'<Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="{ns}">',
    ]
    complex_types: list[str] = []
    for table in schema.tables.values():
        out.append(_entity_type(table, ns, complex_types))
    out.extend(complex_types)
    out.append(f'<EntityContainer Name="{container}">')
    for name in schema.tables:
        out.append(f"<EntitySet Name={quoteattr(name)} EntityType={quoteattr(f'{ns}.{name}')}>")
        if name == ROOT_TABLE:
            out.append(_CAPABILITIES)
        out.append("</EntitySet>")
    out.append("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>")
    return "\n".join(p for p in out if p).encode("utf-8")


def _entity_type(table: Table, ns: str, complex_types: list[str]) -> str:
    parts = [
        f"<EntityType Name={quoteattr(table.name)}>",
        '<Key><PropertyRef Name="__id"/></Key>',
        '<Property Name="__id" Type="Edm.String"/>',
    ]
    if table.name == ROOT_TABLE:
        parts.append(f'<Property Name="__system" Type="{SUBMISSION_NS}.metadata"/>')
    elif table.parent_key:
        parts.append(f'<Property Name={quoteattr(table.parent_key)} Type="Edm.String"/>')
    parts.extend(_members(table.children, ns, table.name if table.name != ROOT_TABLE else "", complex_types))
    parts.append("</EntityType>")
    return "\n".join(parts)


def _members(nodes: tuple[Node, ...], ns: str, path: str, complex_types: list[str]) -> list[str]:
    out = []
    for node in nodes:
        name = node.odata_name
        if node.kind == "group":
            type_name = f"{path}.{name}" if path else name
            body = _members(node.children, ns, type_name, complex_types)
            complex_types.append(
                f"<ComplexType Name={quoteattr(type_name)}>" + "\n".join(body) + "</ComplexType>"
            )
            out.append(f"<Property Name={quoteattr(name)} Type={quoteattr(f'{ns}.{type_name}')}/>")
        elif node.kind == "repeat":
            out.append(
                f"<NavigationProperty Name={quoteattr(name)} "
                f"Type={quoteattr(f'Collection({ns}.{node.table})')}/>"
            )
        else:
            out.append(f'<Property Name={quoteattr(name)} Type="{EDM_TYPES.get(node.type, "Edm.String")}"/>')
    return out
