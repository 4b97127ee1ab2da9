"""Page labels in Vietnamese (first) and English, and the language choice (``?lang=`` or the ``lang`` cookie).

Labels are keyed; a missing key is a bug the tests catch (``t`` raises in debug, shows the key otherwise).
Messages from core are already bilingual ("Việt / English"); ``pick`` keeps the chosen half.
"""

from __future__ import annotations

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"
LANG_COOKIE = "lang"

LABELS: dict[str, tuple[str, str]] = {
    # frame
    "app": ("Rà soát ma túy", "Drug-prevention survey"),
    "skip": ("Bỏ qua tới nội dung", "Skip to content"),
    "menu": ("Danh mục", "Menu"),
    "nav.overview": ("Tổng quan", "Overview"),
    "nav.indicators": ("Chỉ tiêu", "Indicators"),
    "nav.submissions": ("Bản ghi", "Submissions"),
    "nav.rounds": ("Đợt và biểu mẫu", "Rounds and forms"),
    "nav.collectors": ("Người thu thập", "Collectors"),
    "nav.exports": ("Xuất Excel", "Excel exports"),
    "nav.plugins": ("Plugin", "Plugins"),
    "logout": ("Đăng xuất", "Log out"),
    "lang.switch": ("English", "Tiếng Việt"),
    "role.admin": ("Quản trị", "Administrator"),
    "role.province_manager": ("Cán bộ tỉnh", "Province manager"),
    "role.commune_officer": ("Cán bộ xã", "Commune officer"),
    "role.viewer": ("Người xem", "Viewer"),
    "role.collector": ("Người thu thập", "Collector"),
    "all_units": ("Toàn quốc", "All units"),
    # login
    "login.title": ("Đăng nhập", "Log in"),
    "login.username": ("Tên đăng nhập", "Username"),
    "login.password": ("Mật khẩu", "Password"),
    "login.submit": ("Đăng nhập", "Log in"),
    "login.failed": ("Sai tên đăng nhập hoặc mật khẩu", "Wrong username or password"),
    "login.throttled": (
        "Đăng nhập sai quá nhiều lần; hãy thử lại sau ít phút",
        "Too many failed log-ins; try again in a few minutes",
    ),
    "login.expired": (
        "Phiên làm việc đã hết hạn, hãy đăng nhập lại",
        "Your session ended; please log in again",
    ),
    "logged_out": ("Đã đăng xuất", "You are logged out"),
    # common
    "filter": ("Lọc", "Filter"),
    "all": ("Tất cả", "All"),
    "none": ("Không có", "None"),
    "save": ("Lưu", "Save"),
    "cancel": ("Hủy", "Cancel"),
    "back": ("Quay lại", "Back"),
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "code": ("Mã", "Code"),
    "name": ("Tên", "Name"),
    "unit": ("Đơn vị", "Unit"),
    "units": ("Đơn vị", "Units"),
    "commune": ("Xã, phường", "Commune"),
    "communes": ("Xã, phường", "Communes"),
    "hamlet": ("Thôn, xóm", "Hamlet"),
    "hamlets": ("Thôn, xóm", "Hamlets"),
    "province": ("Tỉnh, thành phố", "Province"),
    "provinces": ("Tỉnh, thành phố", "Provinces"),
    "form": ("Biểu mẫu", "Form"),
    "forms": ("Biểu mẫu", "Forms"),
    "round": ("Đợt", "Round"),
    "rounds": ("Đợt", "Rounds"),
    "period": ("Kỳ", "Period"),
    "kind": ("Loại", "Kind"),
    "state": ("Trạng thái", "State"),
    "date_from": ("Từ ngày", "From"),
    "date_to": ("Đến ngày", "To"),
    "received": ("Đã nhận", "Received"),
    "received_at": ("Thời điểm nhận", "Received at"),
    "counted": ("Được tính", "Counted"),
    "collector": ("Người thu thập", "Collector"),
    "collectors": ("Người thu thập", "Collectors"),
    "submissions": ("Bản ghi", "Submissions"),
    "actions": ("Thao tác", "Actions"),
    "details": ("Chi tiết", "Details"),
    "history": ("Lịch sử", "History"),
    "comment": ("Ghi chú", "Comment"),
    "when": ("Thời điểm", "When"),
    "who": ("Người thực hiện", "Who"),
    "what": ("Việc", "What"),
    "nothing": ("Chưa có gì", "Nothing yet"),
    "page": ("Trang", "Page"),
    "prev": ("Trang trước", "Previous"),
    "next": ("Trang sau", "Next"),
    "of": ("trên", "of"),
    "error": ("Lỗi", "Error"),
    "done": ("Đã xong", "Done"),
    "forbidden": ("Bạn không có quyền xem trang này", "You may not see this page"),
    "not_found": ("Không tìm thấy", "Not found"),
    "error.404": ("Không có trang này; hãy chọn trong danh mục", "No such page; pick one from the menu"),
    "error.405": ("Trang này không nhận yêu cầu kiểu này", "This page does not accept this kind of request"),
    # round history: what each recorded action means to an officer
    "history.create": ("Tạo đợt", "Round created"),
    "history.open": ("Mở đợt", "Round opened"),
    "history.close": ("Đóng đợt", "Round closed"),
    "history.reopen": ("Mở lại đợt", "Round reopened"),
    "history.archive": ("Lưu trữ đợt", "Round archived"),
    "history.assign": ("Giao người thu thập", "Collectors assigned"),
    "history.rule": ("Đổi trạng thái được tính", "Counted review states changed"),
    "history.rollforward": ("Chuyển danh sách sang đợt mới", "Lists rolled forward"),
    "server_error": ("Lỗi máy chủ; hãy thử lại sau", "Server error; please try again later"),
    "csrf": (
        "Biểu mẫu đã hết hạn; hãy tải lại trang và gửi lại",
        "The form has expired; reload the page and send it again",
    ),
    # overview
    "overview.title": ("Tổng quan", "Overview"),
    "overview.open_rounds": ("Đợt đang mở", "Open rounds"),
    "overview.no_open": ("Không có đợt nào đang mở", "No round is open"),
    "overview.latest": ("Bản ghi mới nhất", "Latest submissions"),
    "overview.off_target": ("Chỉ tiêu chưa đạt", "Indicators off target"),
    "overview.computed_at": ("Tính lúc", "Computed at"),
    "overview.all_met": ("Không có chỉ tiêu nào chưa đạt", "No indicator is off target"),
    "coverage": ("Độ phủ thôn, xóm", "Hamlet coverage"),
    "hamlets_covered": ("Thôn có bản ghi", "Hamlets with data"),
    "pledged": ("Hộ đã ký cam kết", "Households pledged"),
    "persons_followed": ("Người đã rà soát lại", "Persons followed up"),
    "show_hamlets": ("Xem từng thôn", "Show hamlets"),
    "covered": ("Đã có", "Covered"),
    "no_hamlet_list": ("chưa có danh sách thôn", "no hamlet list yet"),
    "not_covered": ("Chưa có", "Not yet"),
    # indicators
    "ind.title": ("Chỉ tiêu", "Indicators"),
    "ind.indicator": ("Chỉ tiêu", "Indicator"),
    "ind.value": ("Giá trị", "Value"),
    "ind.target": ("Mục tiêu", "Target"),
    "ind.status": ("Đánh giá", "Status"),
    "ind.change": ("So với năm trước", "Change on last year"),
    "ind.previous": ("Năm trước", "Last year"),
    "ind.by_unit": ("Theo đơn vị cấp dưới", "By unit below"),
    "ind.chart": ("Biểu đồ", "Chart"),
    "ind.choose": ("Chọn chỉ tiêu", "Choose an indicator"),
    "ind.none": ("Chưa có chỉ tiêu nào cho đơn vị này", "No indicator for this unit"),
    "ind.none_all": (
        "Chưa tỉnh nào có số liệu trong kỳ này; hãy chọn một đơn vị để xem chỉ tiêu của nó",
        "No province has data in this period yet; choose a unit to see its indicators",
    ),
    "ind.up": ("Lên cấp trên", "Up one level"),
    "ind.live": ("tính trực tiếp", "computed live"),
    "ind.live_note": (
        "năm trước tính trực tiếp từ dữ liệu (chưa có đợt nào của năm đó được đóng)",
        "last year computed live from the data (no round of that year has been closed)",
    ),
    "ind.no_data": ("Chỉ tiêu chưa có số liệu", "Indicators with no data yet"),
    "ind.below_not_met": ("Đơn vị cấp dưới chưa đạt", "Units below not met"),
    "ind.reported": ("Đơn vị đã báo cáo", "Units reported"),
    "rounds.allow_missing_hamlets": (
        "Mở cả khi có xã chưa có danh sách thôn, xóm", "Open even where a commune has no hamlet list"
    ),
    "overview.no_hamlet_list": (
        "Xã chưa có danh sách thôn, xóm (điện thoại chỉ chọn được \"toàn xã\")",
        "Communes without a hamlet list (phones can only choose \"whole commune\")",
    ),
    "ind.units_no_data": ("đơn vị không có số liệu", "units with no data"),
    "ind.progress_note": (
        "Tiến độ so với chỉ tiêu / thời gian của kế hoạch đã qua",
        "Progress towards the target / share of the plan's time gone",
    ),
    "ind.definition": ("Định nghĩa chỉ tiêu", "Indicator definition"),
    "ind.numerator": ("Tử số", "Numerator"),
    "ind.denominator": ("Mẫu số", "Denominator"),
    "ind.forms": ("Biểu mẫu nguồn", "Source forms"),
    "ind.period_kind": ("Kỳ tính", "Period"),
    "ind.source": ("Văn bản nguồn", "Source document"),
    "ind.plan": ("Kế hoạch", "Plan"),
    "ind.level": ("Cấp thấp nhất", "Lowest level"),
    # submissions
    "sub.title": ("Bản ghi", "Submissions"),
    "sub.review_state": ("Trạng thái duyệt", "Review state"),
    "sub.summary": ("Nội dung", "Content"),
    "sub.count": ("bản ghi", "submissions"),
    "sub.choose_form": ("Chọn biểu mẫu để xem bản ghi", "Choose a form to see its submissions"),
    "sub.detail": ("Bản ghi", "Submission"),
    "sub.instance": ("Mã bản ghi", "Instance ID"),
    "sub.version": ("Phiên bản biểu mẫu", "Form version"),
    "sub.fields": ("Dữ liệu", "Data"),
    "sub.attachments": ("Tệp đính kèm", "Attachments"),
    "sub.missing_attachment": ("chưa nhận", "not received yet"),
    "sub.no_personal": (
        "Vai trò của bạn chỉ xem được thông tin chung, không xem được nội dung bản ghi",
        "Your role shows who, when and where only, not the answers",
    ),
    "sub.encrypted": (
        "Bản ghi được mã hoá trên điện thoại; máy chủ không đọc được nội dung (giải mã khi xuất, có khoá)",
        "Encrypted on the phone; the server cannot read the answers (they are decrypted only at export)",
    ),
    "sub.review": ("Duyệt", "Review"),
    "sub.approve": ("Duyệt", "Approve"),
    "sub.has_issues": ("Có vấn đề", "Has issues"),
    "sub.reject": ("Từ chối", "Reject"),
    "sub.comment_needed": (
        "Cần ghi chú khi đánh dấu có vấn đề hoặc từ chối",
        "A comment is needed for has issues or reject",
    ),
    "sub.review_history": ("Lịch sử duyệt", "Review history"),
    "sub.edit_history": ("Lịch sử sửa", "Edit history"),
    "sub.replaces": ("Thay cho bản", "Replaces"),
    "sub.replaced_by": ("Đã được thay bằng bản", "Replaced by"),
    "sub.current": ("Bản hiện hành", "Current version"),
    "sub.old_version": ("Bản cũ (đã bị sửa)", "Old version (edited since)"),
    "sub.reviewed": ("Đã lưu kết quả duyệt", "Review saved"),
    # rounds and forms
    "rounds.title": ("Đợt và biểu mẫu", "Rounds and forms"),
    "rounds.create": ("Tạo đợt mới", "Create a round"),
    "rounds.unit_codes": ("Mã đơn vị (cách nhau bởi dấu phẩy)", "Unit codes (comma separated)"),
    "rounds.open": ("Mở đợt", "Open"),
    "rounds.close": ("Đóng đợt", "Close"),
    "rounds.archive": ("Lưu trữ", "Archive"),
    "rounds.reopen": ("Mở lại", "Reopen"),
    "rounds.reason": ("Lý do mở lại", "Reason to reopen"),
    "rounds.progress": ("Tiến độ", "Progress"),
    "rounds.assign": ("Giao người thu thập", "Assign collectors"),
    "rounds.assigned": ("Người thu thập được giao", "Assigned collectors"),
    "rounds.none_assigned": (
        "Chưa giao ai: đợt này chưa có trên điện thoại nào; hãy giao người thu thập",
        "Nobody assigned: this round is on no phone yet; assign collectors",
    ),
    "rounds.created": ("Đã tạo đợt", "Round created"),
    "rounds.changed": ("Đã cập nhật đợt", "Round updated"),
    "forms.title": ("Biểu mẫu đã đăng", "Published forms"),
    "forms.upload": ("Đăng biểu mẫu XLSForm", "Upload an XLSForm"),
    "forms.file": ("Tệp XLSForm (.xlsx)", "XLSForm file (.xlsx)"),
    "forms.media": ("Tệp đi kèm (CSV, ảnh…), nếu có", "Media files (CSV, images…), if any"),
    "forms.add_to_round": ("Thêm vào đợt", "Add to round"),
    "forms.validate": ("Kiểm tra bằng ODK Validate", "Check with ODK Validate"),
    "forms.errors": ("Biểu mẫu có lỗi, chưa được đăng", "The form has errors and was not published"),
    "forms.published": ("Đã đăng biểu mẫu", "Form published"),
    "forms.missing_media": ("Thiếu tệp đi kèm", "Missing media files"),
    "forms.warnings": ("Cảnh báo", "Warnings"),
    "forms.sheet": ("Trang", "Sheet"),
    "forms.row": ("Dòng", "Row"),
    "forms.message": ("Lỗi", "Problem"),
    "forms.file_col": ("Tệp", "File"),
    "forms.version": ("Phiên bản", "Version"),
    "forms.published_at": ("Ngày đăng", "Published"),
    "forms.source": ("Nguồn", "Source"),
    # collectors
    "col.title": ("Người thu thập", "Collectors"),
    "col.add": ("Thêm người thu thập", "Add a collector"),
    "col.fullname": ("Họ và tên", "Full name"),
    "col.username": ("Tên đăng nhập", "Username"),
    "col.active": ("Đang hoạt động", "Active"),
    "col.revoked": ("Đã thu hồi", "Revoked"),
    "col.revoke": ("Thu hồi", "Revoke"),
    "col.revoke_confirm": (
        "Thu hồi người thu thập này? Điện thoại của họ sẽ ngừng gửi được ngay.",
        "Revoke this collector? Their phone stops syncing at once.",
    ),
    "col.qr": ("Mã QR", "QR code"),
    "col.rotate": ("Cấp mã mới", "New code"),
    "col.card": (
        "Mã QR hiện tại; mã in trước đây vẫn dùng được.",
        "The current QR code; earlier cards still work.",
    ),
    "col.qr_confirm": (
        "Tạo mã QR mới? Mã cũ (và điện thoại đang dùng mã cũ) sẽ ngừng hoạt động.",
        "Make a new QR code? The old code (and phones set up with it) stop working.",
    ),
    "col.sheet": ("In thẻ mã QR", "Print QR cards"),
    "col.sheet_hint": (
        "In thẻ cho mọi người thu thập của một đơn vị hoặc một đợt (mỗi thẻ là một mã mới).",
        "Print cards for every collector of a unit or a round (every card is a new code).",
    ),
    "col.print": ("In", "Print"),
    "col.scan": (
        "Mở ODK Collect → Thêm dự án → Quét mã QR",
        "Open ODK Collect → Add project → Scan QR code",
    ),
    "col.rotated": (
        "Mã mới đã được tạo; mã in trước đây không còn dùng được.",
        "A new code was made; any earlier printed code no longer works.",
    ),
    "col.added": ("Đã thêm người thu thập; đây là mã QR của họ.", "Collector added; here is their QR code."),
    "col.place": ("Địa bàn", "Place"),
    "col.rounds": ("Đợt được giao", "Rounds"),
    "col.none": ("Không có người thu thập nào đang hoạt động ở đây", "No active collector here"),
    # exports
    "exp.title": ("Xuất Excel", "Excel exports"),
    "exp.raw": ("Dữ liệu thô theo biểu mẫu", "Raw data per form"),
    "exp.raw_hint": (
        "Mỗi biểu mẫu một tệp: một trang (hoặc một CSV) cho bản ghi, một cho mỗi nhóm lặp.",
        "One file per form: a sheet (or a CSV) of submissions and one per repeat group.",
    ),
    "exp.report": ("Báo cáo chỉ tiêu", "Indicator report"),
    "exp.report_hint": (
        "Chỉ tiêu của đơn vị và các đơn vị cấp dưới, so với mục tiêu và năm trước.",
        "Indicators of the unit and the units below it, against targets and last year.",
    ),
    "exp.labels": ("Nhãn", "Labels"),
    "exp.format": ("Định dạng", "Format"),
    "exp.format_xlsx": ("Excel (.xlsx)", "Excel (.xlsx)"),
    "exp.format_csv": (
        "CSV (.zip, như ODK Central: KEY / PARENT_KEY)",
        "CSV (.zip, as ODK Central: KEY / PARENT_KEY)",
    ),
    "exp.labels_vi": ("Tiếng Việt", "Vietnamese"),
    "exp.labels_en": ("Tiếng Anh", "English"),
    "exp.labels_values": ("Giá trị gốc", "Raw values"),
    "exp.download": ("Tải về", "Download"),
    "exp.personal": (
        "Gồm cả thông tin cá nhân (được ghi vào nhật ký)",
        "Include personal data (recorded in the audit log)",
    ),
    "exp.scope": ("Chỉ gồm dữ liệu trong địa bàn của bạn", "Only data from your units is included"),
    # plugins
    "plg.title": ("Plugin đã cài", "Installed plugins"),
    "plg.version": ("Phiên bản", "Version"),
    "plg.hooks": ("Hook", "Hooks"),
    "plg.builtin": ("Có sẵn", "Built in"),
    "plg.plans": ("Kế hoạch của tỉnh", "Province plans"),
    "plg.issuer": ("Cơ quan ban hành", "Issuer"),
    "plg.number": ("Số hiệu", "Number"),
    "plg.date": ("Ngày ban hành", "Date"),
    "plg.plugin": ("Plugin", "Plugin"),
}


def norm_lang(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return value if value in LANGS else None


def t(key: str, lang: str) -> str:
    """The label in ``lang``; an unknown key shows itself (visible in a page, caught by the tests)."""
    pair = LABELS.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]


def pick(text: str | None, lang: str) -> str:
    """One half of a bilingual "Việt / English" string (core's labels and messages); other text as is."""
    if not text:
        return ""
    vi, sep, en = str(text).partition(" / ")
    if not sep or " / " in en:
        return str(text)
    return en if lang == "en" else vi
