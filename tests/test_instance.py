"""Parsing submitted instance XML: the field convention, identity, edits, and hostile input refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rasoat.core.instance import FormShape, InstanceError, parse_instance, read_identity, safe_attachment_name

XFORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
 xmlns:jr="http://openrosa.org/javarosa"><h:head><h:title>t</h:title><model><instance>
<data id="hh" version="3"><name/><photo/><household><head_name/><member jr:template=""><age/><doc/></member>
</household><meta><audit/><instanceID/></meta></data></instance>
<bind nodeset="/data/name" type="string"/><bind nodeset="/data/photo" type="binary"/>
<bind nodeset="/data/household/member/doc" type="binary"/><bind nodeset="/data/meta/audit" type="binary"/>
</model></h:head><h:body><group ref="/data/household/member"><repeat nodeset="/data/household/member">
<input ref="/data/household/member/age"/></repeat></group></h:body></h:html>"""

INSTANCE = """<?xml version='1.0' ?><data id="hh" version="3" xmlns:orx="http://openrosa.org/xforms">
<name>Nguyễn Văn A</name><photo>1.jpg</photo>
<household><head_name>B</head_name><member><age>34</age><doc>d1.pdf</doc></member>
<member><age>7</age><doc/></member></household>
<orx:meta><orx:audit>audit.csv</orx:audit><orx:instanceID>uuid:1</orx:instanceID>
<orx:instanceName>A – 2026</orx:instanceName></orx:meta></data>""".encode()


def test_fields_follow_the_project_convention_with_repeats_and_binaries() -> None:
    shape = FormShape.from_xform(XFORM)
    assert shape.repeats == {"household/member"}
    assert shape.binaries == {"photo", "household/member/doc", "meta/audit"}
    p = parse_instance(INSTANCE, shape)
    assert (p.form_id, p.version, p.instance_id, p.instance_name) == ("hh", "3", "uuid:1", "A – 2026")
    assert p.deprecated_id is None
    assert p.fields["name"] == "Nguyễn Văn A"
    assert p.fields["household/head_name"] == "B"
    assert p.fields["household/member"] == [{"age": "34", "doc": "d1.pdf"}, {"age": "7", "doc": ""}]
    assert p.fields["meta/instanceID"] == "uuid:1"
    assert p.attachment_names == ["1.jpg", "d1.pdf", "audit.csv"]


def test_single_repeat_instance_is_still_a_list_when_the_shape_says_so() -> None:
    xml = (
        b'<data id="hh"><household><member><age>1</age></member></household>'
        b"<meta><instanceID>u</instanceID></meta></data>"
    )
    p = parse_instance(xml, lambda form_id, version: FormShape.from_xform(XFORM))
    assert p.fields["household/member"] == [{"age": "1"}]
    assert p.version == ""
    # without a shape, a lone repeat looks like a group, and repeated siblings become a list
    assert parse_instance(xml).fields["household/member/age"] == "1"


def test_edit_carries_deprecated_id_and_orx_version_is_read_by_local_name() -> None:
    xml = (
        b'<data xmlns:orx="http://openrosa.org/xforms" id="f" orx:version="2"><a>1</a>'
        b"<meta><instanceID>uuid:new</instanceID><deprecatedID>uuid:old</deprecatedID></meta></data>"
    )
    p = parse_instance(xml)
    assert (p.version, p.instance_id, p.deprecated_id) == ("2", "uuid:new", "uuid:old")
    assert read_identity(xml) == ("f", "2")


def test_encrypted_envelope_lists_its_files() -> None:
    xml = b"""<data id="s" version="3" encrypted="yes" xmlns="http://www.opendatakit.org/xforms/encrypted">
<base64EncryptedKey>AAAA</base64EncryptedKey>
<orx:meta xmlns:orx="http://openrosa.org/xforms"><orx:instanceID>uuid:e</orx:instanceID></orx:meta>
<media><file>1.jpg.enc</file></media><encryptedXmlFile>submission.xml.enc</encryptedXmlFile></data>"""
    p = parse_instance(xml)
    assert p.encrypted and p.instance_id == "uuid:e"
    assert p.attachment_names == ["1.jpg.enc", "submission.xml.enc"]


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        (b"", "not_xml"),
        (b"not xml at all", "not_xml"),
        (b"<data id='x'><a></data>", "not_xml"),
        (b"<data><meta><instanceID>u</instanceID></meta></data>", "no_form_id"),
        (b"<data id='x'><a>1</a></data>", "no_instance_id"),
        (b"<data id='x'><meta><instanceID> </instanceID></meta></data>", "no_instance_id"),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b"<data id='x'><a>&lol2;</a><meta><instanceID>u</instanceID></meta></data>",
            "xml_entities",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            b"<data id='x'><a>&xxe;</a><meta><instanceID>u</instanceID></meta></data>",
            "xml_entities",
        ),
        (b'<!DOCTYPE data SYSTEM "http://127.0.0.1/x.dtd"><data id="x"/>', "xml_entities"),
        (
            b"<data id='x'>"
            + b"<g>" * 100
            + b"</g>" * 100
            + b"<meta><instanceID>u</instanceID></meta></data>",
            "too_deep",
        ),
        (
            b"<data id='x'><photo>../etc/passwd</photo><meta><instanceID>u</instanceID></meta></data>",
            "bad_attachment_name",
        ),
        (b"<data id='x'><meta><instanceID>../../x</instanceID></meta></data>", "bad_instance_id"),
        (
            b"<data id='x'><meta><instanceID>u</instanceID><deprecatedID>a/b</deprecatedID></meta></data>",
            "bad_instance_id",
        ),
    ],
)
def test_bad_xml_is_refused_with_a_reason(xml: bytes, code: str) -> None:
    shape = FormShape(binaries=frozenset({"photo"}))
    with pytest.raises(InstanceError) as info:
        parse_instance(xml, shape)
    assert info.value.reason == code
    assert " / " in info.value.message  # Vietnamese first, English alongside


def test_size_limit() -> None:
    xml = b"<data id='x'><a>" + b"x" * 2000 + b"</a><meta><instanceID>u</instanceID></meta></data>"
    with pytest.raises(InstanceError) as info:
        parse_instance(xml, max_bytes=1000)
    assert info.value.reason == "too_large"


@pytest.mark.parametrize(
    "name", ["../x", "/etc/passwd", "a\x00b", "C:evil", "a\\b", ".hidden", "", "..", "x/y"]
)
def test_unsafe_attachment_names(name: str) -> None:
    assert not safe_attachment_name(name)


@pytest.mark.parametrize("name", ["1714551234567.jpg", "audit.csv", "ảnh chụp.jpg", "submission.xml.enc"])
def test_safe_attachment_names(name: str) -> None:
    assert safe_attachment_name(name)


_XMLISH = st.lists(
    st.sampled_from(
        [
            b"<data id='f'>",
            b"</data>",
            b"<meta>",
            b"</meta>",
            b"<instanceID>",
            b"</instanceID>",
            b"<a>",
            b"</a>",
            b"&amp;",
            b"&x;",
            b"<!DOCTYPE d>",
            b"<?xml version='1.0'?>",
            b"uuid:1",
            b"\x00",
            b"\xff",
            b"<",
            b">",
            b"'",
            b'"',
            b"]]>",
            b"<![CDATA[",
            b"\xc3\xa1",
        ]
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), _XMLISH))
def test_any_bytes_parse_or_fail_with_an_instance_error(data: bytes) -> None:
    try:
        parsed = parse_instance(data)
    except InstanceError as exc:
        assert exc.reason and " / " in exc.message
    else:
        assert parsed.form_id and parsed.instance_id
