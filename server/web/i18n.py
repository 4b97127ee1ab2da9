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
    "nav.forms": ("Biểu mẫu", "Forms"),
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
    # officer accounts and one's own password
    "nav.accounts": ("Tài khoản", "Accounts"),
    "nav.units": ("Danh sách đơn vị", "Unit lists"),
    "units.title": (
        "Danh sách thôn, trường, doanh nghiệp, khu công nghiệp", "Hamlet, school, enterprise and zone lists"
    ),
    "units.intro": (
        "Tải mẫu, điền danh sách của xã, tải lên và xem trước; danh sách mỗi xã trong tệp thay danh sách cũ "
        "khi bạn xác nhận. Điện thoại và chỉ tiêu dùng ngay danh sách mới.",
        "Download a template, fill in your communes' lists, upload and preview; each commune in the file "
        "gets exactly its rows once you confirm. Phones and indicators use the new lists at once.",
    ),
    "units.templates": ("Mẫu danh sách", "Templates"),
    "units.upload": ("Tải danh sách lên", "Upload a list"),
    "units.kind": ("Loại danh sách", "List"),
    "units.file": ("Tệp (.xlsx hoặc .csv)", "File (.xlsx or .csv)"),
    "units.preview": ("Xem trước", "Preview"),
    "units.preview_title": ("Xem trước thay đổi", "Changes to apply"),
    "units.refused": ("Tệp bị từ chối, chưa nạp gì; số lỗi", "File refused, nothing loaded; problems"),
    "units.row": ("Dòng", "Row"),
    "units.problem": ("Lỗi", "Problem"),
    "units.typed": ("Nội dung đã nhập", "As typed"),
    "units.rows": ("dòng", "rows"),
    "units.communes": ("xã", "communes"),
    "units.added": ("thêm", "added"),
    "units.renamed": ("đổi tên", "renamed"),
    "units.removed": ("bỏ", "removed"),
    "units.unchanged": ("giữ nguyên", "unchanged"),
    "units.before": ("đang dùng", "current"),
    "units.confirm": ("Xác nhận nạp danh sách", "Confirm and load"),
    "units.applied": ("Đã nạp danh sách (phiên bản mới)", "List loaded (a new version)"),
    "units.current": ("Danh sách đang dùng theo xã", "Lists in use per commune"),
    "units.versions": ("Các phiên bản đã nạp", "Versions loaded"),
    "units.version": ("Phiên bản", "Version"),
    "units.used": ("Danh sách đơn vị đợt dùng khi mở", "Unit lists the round opened with"),
    "accounts.title": ("Tài khoản cán bộ", "Officer accounts"),
    "accounts.role": ("Vai trò", "Role"),
    "accounts.active": ("Đang dùng", "Active"),
    "accounts.disabled_state": ("Đã khoá", "Disabled"),
    "accounts.disable": ("Khoá", "Disable"),
    "accounts.enable": ("Mở lại", "Re-enable"),
    "accounts.create": ("Tạo tài khoản", "Create account"),
    "accounts.initial_password": ("Mật khẩu đầu tiên (từ 10 ký tự)", "First password (10+ characters)"),
    "accounts.created": ("Đã tạo tài khoản", "Account created"),
    "accounts.disabled": ("Đã khoá tài khoản", "Account disabled"),
    "accounts.enabled": ("Đã mở lại tài khoản", "Account re-enabled"),
    "accounts.edit": ("Sửa tài khoản", "Edit account"),
    "accounts.edit_short": ("Sửa", "Edit"),
    "accounts.saved": ("Đã lưu vai trò và đơn vị", "Role and units saved"),
    "accounts.units_hint": (
        "giữ Ctrl hoặc Shift để chọn nhiều", "hold Ctrl or Shift to pick several"
    ),
    "accounts.reset_link": ("Đường dẫn đặt lại mật khẩu", "Password-reset link"),
    "accounts.reset_hint": (
        "Khi cán bộ quên mật khẩu: tạo một đường dẫn, gửi cho họ; họ tự đặt mật khẩu mới. "
        "Đường dẫn dùng được một lần; đường dẫn mới thay đường dẫn cũ.",
        "When an officer forgets their password: make a link and send it to them; they set a new "
        "password themselves. The link works once; a new link replaces the old one.",
    ),
    "accounts.issue_link": ("Tạo đường dẫn đặt lại mật khẩu", "Make a password-reset link"),
    "accounts.link_issued": (
        "Đường dẫn đã được tạo. Hãy sao chép và gửi cho cán bộ ngay: trang này chỉ hiện nó một lần.",
        "The link is made. Copy it and send it to the officer now: it is shown only this once.",
    ),
    "accounts.link_once": ("Dùng được một lần, hết hạn lúc", "Works once; expires at"),
    "reset.title": ("Đặt mật khẩu mới", "Set a new password"),
    "reset.for": ("Tài khoản", "Account"),
    "reset.submit": ("Đặt mật khẩu mới", "Set the new password"),
    "password.reset_done": (
        "Đã đặt mật khẩu mới; hãy đăng nhập bằng mật khẩu mới", "New password set; log in with it"
    ),
    "password.title": ("Đổi mật khẩu", "Change password"),
    "password.current": ("Mật khẩu hiện tại", "Current password"),
    "password.new": ("Mật khẩu mới (ít nhất 10 ký tự)", "New password (10 characters or more)"),
    "password.repeat": ("Nhập lại mật khẩu mới", "New password again"),
    "password.submit": ("Đổi mật khẩu", "Change password"),
    "password.changed": ("Đã đổi mật khẩu", "Password changed"),
    "password.wrong_current": ("Mật khẩu hiện tại không đúng", "The current password is wrong"),
    "password.mismatch": ("Hai lần nhập mật khẩu mới không khớp", "The two new passwords differ"),
    # audit log pages
    "nav.audit": ("Nhật ký", "Audit log"),
    "audit.title": ("Nhật ký thao tác", "Audit log"),
    "audit.filter": ("Lọc nhật ký", "Filter the log"),
    "audit.person": ("Người thực hiện", "Person"),
    "audit.anyone": ("Mọi người", "Anyone"),
    "audit.action": ("Hành động", "Action"),
    "audit.any_action": ("Mọi hành động", "Any action"),
    "audit.unit": ("Đơn vị", "Unit"),
    "audit.from": ("Từ ngày", "From"),
    "audit.to": ("Đến ngày", "To"),
    "audit.apply": ("Lọc", "Filter"),
    "audit.export": ("Xuất Excel", "Export to Excel"),
    "audit.count": ("Số mục", "Entries"),
    "audit.target": ("Đối tượng", "Target"),
    "audit.details": ("Chi tiết", "Details"),
    "audit.pages": ("Trang", "Pages"),
    "audit.newer": ("Mới hơn", "Newer"),
    "audit.older": ("Cũ hơn", "Older"),
    "audit.bad_day": ("Ngày không hợp lệ (năm-tháng-ngày)", "Invalid date (year-month-day)"),
    "audit.code": ("Mã hành động", "Action code"),
    "audit.family.login": ("Đăng nhập", "Logins"),
    "audit.family.user": ("Tài khoản", "Accounts"),
    "audit.family.collector": ("Người thu thập", "Collectors"),
    "audit.family.round": ("Đợt", "Rounds"),
    "audit.family.form": ("Biểu mẫu", "Forms"),
    "audit.family.submission": ("Duyệt, sửa bản ghi", "Review and edits"),
    "audit.family.view": ("Xem dữ liệu cá nhân", "Personal data viewed"),
    "audit.family.export": ("Xuất dữ liệu", "Exports"),
    "audit.family.key": ("Khóa mã hóa", "Encryption keys"),
    "audit.family.assessment": ("Đánh giá QĐ 28", "QĐ 28 assessment"),
    "audit.family.backup": ("Sao lưu", "Backups"),
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
    "ind.units_no_data": ("đơn vị chưa có số liệu", "units without data"),
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
    # indicators at province scale (issue 21): charts of every unit, search and pages of units
    "ind.periods_no_data": ("kỳ chưa có số liệu", "periods without data"),
    "ind.units_chart": ("Đơn vị có số liệu, chưa đạt xếp trước", "Units with data, worst first"),
    "ind.history": ("Qua các kỳ", "Over the periods"),
    "ind.more": ("Các chỉ tiêu khác", "More indicators"),
    "ind.units_shown": ("đơn vị", "units"),
    "ind.no_match": ("Không có đơn vị nào khớp", "No unit matches"),
    "ind.legend": ("Chú giải", "Legend"),
    "ind.target_line": ("Đường mục tiêu", "Target line"),
    "ind.recompute": ("Tính lại ngay", "Compute again now"),
    # the unit and period pickers (templates/_pickers.html)
    "picker.find_unit": (
        "Tìm đơn vị: tên (có dấu hoặc không) hoặc mã", "Find a unit: name (any accents) or code"
    ),
    "picker.kind": ("Loại kỳ", "Kind of period"),
    "picker.year": ("Năm", "Year"),
    "picker.part": ("Kỳ trong năm", "Part of the year"),
    "picker.kind.year": ("Năm", "Year"),
    "picker.kind.half": ("6 tháng", "Half year"),
    "picker.kind.quarter": ("Quý", "Quarter"),
    "picker.kind.month": ("Tháng", "Month"),
    "picker.kind.week": ("Tuần", "Week"),
    "picker.kind.qd28": ("Năm đánh giá QĐ 28", "QĐ 28 assessment year"),
    "picker.part.year": ("", ""),
    "picker.part.half": ("6 tháng", "Half"),
    "picker.part.quarter": ("Quý", "Quarter"),
    "picker.part.month": ("Tháng", "Month"),
    "picker.part.week": ("Tuần", "Week"),
    "picker.part.qd28": ("", ""),
    # submissions
    "sub.title": ("Bản ghi", "Submissions"),
    "sub.review_state": ("Trạng thái duyệt", "Review state"),
    "sub.summary": ("Nội dung", "Content"),
    "sub.count": ("bản ghi", "submissions"),
    "sub.newer": ("Mới hơn", "Newer"),
    "sub.older": ("Cũ hơn", "Older"),
    "sub.choose_form": ("Chọn biểu mẫu để xem bản ghi", "Choose a form to see its submissions"),
    "sub.detail": ("Bản ghi", "Submission"),
    "sub.instance": ("Mã bản ghi", "Instance ID"),
    "sub.version": ("Phiên bản biểu mẫu", "Form version"),
    "sub.fields": ("Dữ liệu", "Data"),
    "sub.attachments": ("Tệp đính kèm", "Attachments"),
    "sub.missing_attachment": ("chưa nhận", "not received yet"),
    "sub.no_personal": (
        "Danh tính (họ tên, số định danh, địa chỉ…) được ẩn với vai trò của bạn; chỉ hiện thông tin chung "
        "và các trường thống kê mà biểu mẫu khai báo",
        "Identities (names, ID numbers, addresses…) are hidden for your role; only who, when and where "
        "and the statistical answers the form declares are shown",
    ),
    "sub.review_unreadable": (
        "Chỉ duyệt được bản ghi mà bạn đọc được nội dung",
        "Only a record whose answers you can read can be reviewed",
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
    "sub.comment_label": (
        "Ghi chú (bắt buộc khi có vấn đề hoặc từ chối)", "Comment (needed for has issues or reject)"
    ),
    "sub.technical": ("Thông tin kỹ thuật", "Technical details"),
    # answers the phone records without asking (phone metadata) and calculations without a label
    "meta.start": ("Bắt đầu điền", "Started filling in"),
    "meta.end": ("Điền xong", "Finished filling in"),
    "meta.today": ("Ngày điền", "Day filled in"),
    "meta.deviceid": ("Mã máy điện thoại", "Phone ID"),
    "meta.username": ("Tên người dùng trên điện thoại", "Username on the phone"),
    "meta.email": ("Thư điện tử trên điện thoại", "E-mail on the phone"),
    "meta.phonenumber": ("Số điện thoại", "Phone number"),
    "meta.simserial": ("Số sê-ri SIM", "SIM serial number"),
    "meta.subscriberid": ("Mã thuê bao", "Subscriber ID"),
    "meta.audit": ("Nhật ký thao tác trên điện thoại", "Audit log from the phone"),
    "meta.start-geopoint": ("Vị trí khi bắt đầu điền", "Location when filling in started"),
    "meta.calculate": ("Giá trị biểu mẫu tự tính", "Value the form computes"),
    # the review queue
    "nav.review": ("Cần duyệt", "To review"),
    "review.title": ("Cần duyệt", "To review"),
    "review.waiting": (
        "bản ghi chờ duyệt trong địa bàn của bạn, cũ nhất trước",
        "records waiting for review in your units, oldest first",
    ),
    "review.empty": ("Không còn bản ghi nào chờ duyệt", "Nothing is waiting for review"),
    "review.first": ("Về đầu hàng đợi", "Back to the start"),
    "review.back": ("Về danh sách cần duyệt", "Back to the review queue"),
    "review.and_next": ("Lưu và sang bản tiếp theo", "Save and go to the next record"),
    "review.approve_next": ("Duyệt và sang bản tiếp theo", "Approve and next"),
    "review.issues_next": ("Có vấn đề và sang bản tiếp theo", "Has issues and next"),
    "review.reject_next": ("Từ chối và sang bản tiếp theo", "Reject and next"),
    "review.stay": ("Lưu và ở lại bản này", "Save and stay here"),
    "review.saved_next": (
        "Đã lưu kết quả duyệt; đây là bản tiếp theo", "Review saved; here is the next record"
    ),
    "review.done": (
        "Đã lưu kết quả duyệt; không còn bản nào chờ duyệt", "Review saved; nothing else is waiting"
    ),
    # rounds and forms
    "rounds.title": ("Đợt và biểu mẫu", "Rounds and forms"),
    "rounds.create": ("Tạo đợt mới", "Create a round"),
    "rounds.units": ("Đơn vị của đợt", "Units of the round"),
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
    "forms.upload": ("Tải lên biểu mẫu XLSForm", "Upload an XLSForm"),
    "forms.page": ("Biểu mẫu", "Forms"),
    "forms.upload_link": ("Tải lên biểu mẫu mới (bản nháp)", "Upload a new form (draft)"),
    "forms.upload_help": (
        "Tệp được lưu thành bản nháp: thử trên điện thoại bằng mã QR riêng rồi mới đăng.",
        "The file is kept as a draft: test it on a phone with its own QR code, then publish it.",
    ),
    "forms.save_draft": ("Lưu bản nháp", "Save as draft"),
    "forms.draft_saved": ("Đã lưu bản nháp", "Draft saved"),
    "forms.draft_discarded": ("Đã huỷ bản nháp", "Draft discarded"),
    "forms.drafts": ("Bản nháp", "Drafts"),
    "forms.draft": ("Bản nháp", "Draft"),
    "forms.draft_by": ("Người tải lên", "Uploaded by"),
    "forms.current_version": ("Phiên bản đang dùng", "Version in use"),
    "forms.validate_at_publish": ("Sẽ kiểm tra khi đăng", "Checked when published"),
    "forms.test_qr": ("Mã QR để thử trên điện thoại", "QR code to test on a phone"),
    "forms.test_qr_help": (
        "Quét bằng ODK Collect: điện thoại chỉ thấy bản nháp này; bản ghi gửi lên là bản ghi thử.",
        "Scan it with ODK Collect: the phone sees only this draft; what it sends are test submissions.",
    ),
    "forms.tests": ("Bản ghi thử", "Test submissions"),
    "forms.tests_note": (
        "Không tính vào số liệu, không có trong tệp xuất; bỏ đi khi đăng. Không lưu câu trả lời định danh "
        "và tệp đính kèm.",
        "Not counted in any figure, not in exports; discarded on publishing. Identifying answers and "
        "attached files are not kept.",
    ),
    "forms.received": ("Nhận lúc", "Received"),
    "forms.answers": ("Câu trả lời", "Answers"),
    "forms.files": ("Tệp", "Files"),
    "forms.publish": ("Đăng thành phiên bản mới", "Publish as the next version"),
    "forms.publish_help": (
        "Điện thoại của người thu thập nhận phiên bản này; bản ghi thử bị bỏ đi.",
        "Collectors' phones get this version; the test submissions are discarded.",
    ),
    "forms.version_taken": (
        "Phiên bản này đã được đăng với nội dung khác: hãy nhập phiên bản mới.",
        "This version is already published with other content: enter a new version.",
    ),
    "forms.new_version": ("Phiên bản mới", "New version"),
    "forms.add_media": ("Tệp đi kèm còn thiếu", "Missing media files"),
    "forms.add_media_button": ("Thêm tệp", "Add the files"),
    "forms.media_added": ("Đã thêm tệp vào bản nháp", "Files added to the draft"),
    "forms.discard": ("Huỷ bản nháp", "Discard the draft"),
    "forms.discard_confirm": (
        "Huỷ bản nháp này và các bản ghi thử của nó? Mã QR thử sẽ ngừng hoạt động.",
        "Discard this draft and its test submissions? Its test QR code stops working.",
    ),
    "forms.file": ("Tệp XLSForm (.xlsx)", "XLSForm file (.xlsx)"),
    "forms.media": ("Tệp đi kèm (CSV, ảnh…), nếu có", "Media files (CSV, images…), if any"),
    "forms.add_to_round": ("Thêm vào đợt", "Add to round"),
    "forms.validate": ("Kiểm tra bằng ODK Validate", "Check with ODK Validate"),
    "forms.errors": ("Biểu mẫu có lỗi, chưa được lưu", "The form has errors and was not kept"),
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
    "col.local_only": (
        "điện thoại không truy cập được địa chỉ này; hãy đặt địa chỉ công khai (--public-url)",
        "phones cannot reach this address; set the public URL (--public-url)",
    ),
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
    # the project key: unlock and derive (pages_keys)
    "keys.title": ("Khoá mã hoá dự án", "Project encryption key"),
    "keys.intro": (
        "Mở khoá bằng cụm mật khẩu để máy chủ tính và giữ các trường thống kê của bản ghi mã hoá (không giữ "
        "trường định danh); sau đó báo cáo không cần cụm mật khẩu nữa. Khoá chỉ nằm trong bộ nhớ máy chủ "
        "trong số phút đã chọn.",
        "Unlock with the passphrase so the server derives and keeps the statistical fields of encrypted "
        "records (never the identifying ones); reports then need no passphrase. The key stays in the "
        "server's memory only for the minutes chosen.",
    ),
    "keys.passphrase": ("Cụm mật khẩu", "Passphrase"),
    "keys.keep_for": ("Giữ mở khoá trong", "Keep unlocked for"),
    "keys.minutes": ("phút", "minutes"),
    "keys.unlock": ("Mở khoá và tính", "Unlock and derive"),
    "keys.lock": ("Khoá lại ngay", "Lock now"),
    "keys.locked": ("Đã khoá lại", "Locked"),
    "keys.unlocked_for": ("Đang mở khoá, còn", "Unlocked, for another"),
    "keys.unread": ("Bản ghi mã hoá chưa tính", "Encrypted records not counted"),
    "keys.derived": ("Đã tính bản ghi mã hoá", "Encrypted records derived"),
    "keys.failed": ("Bản ghi không mở được", "Records that would not open"),
    "keys.no_key": ("Dự án chưa có khoá mã hoá", "The project has no encryption key"),
    "keys.go": ("Mở khoá để tính", "Unlock to count them"),
    "keys.refused": (
        "Chưa tính được (chỉ tiêu cần câu trả lời mà biểu mẫu đánh dấu cá nhân, biểu mẫu chưa khai báo "
        "trường định danh rasoat:identifying)",
        "Not derived (indicators need answers the form marks personal; it declares no identifying field "
        "rasoat:identifying)",
    ),
    "overview.uncounted": (
        "các chỉ tiêu cần đến chúng ghi \"Không xác định\"",
        "the indicators that need them say \"Unknown\"",
    ),
    "rounds.acknowledge_encrypted": (
        "Đóng cả khi còn bản ghi mã hoá chưa tính (ghi vào lịch sử đợt)",
        "Close even with encrypted records not counted (recorded in the round's history)",
    ),
    "rounds.acknowledged": (
        "bản ghi mã hoá chưa tính, đã xác nhận", "encrypted records not counted, acknowledged"
    ),
    "plg.title": ("Plugin đã cài", "Installed plugins"),
    "plg.version": ("Phiên bản", "Version"),
    "plg.hooks": ("Hook", "Hooks"),
    "plg.builtin": ("Có sẵn", "Built in"),
    "plg.issuer": ("Cơ quan ban hành", "Issuer"),
    "plg.date": ("Ngày ban hành", "Date"),
    "plg.plugin": ("Plugin", "Plugin"),
    "plg.intro": (
        "Mỗi tỉnh cài một plugin mang kế hoạch của tỉnh: các biểu mẫu và chỉ tiêu của kế hoạch đó.",
        "Each province installs a plugin carrying its plan: that plan's forms and indicators.",
    ),
    "plg.national": ("Chương trình quốc gia", "National programme"),
    "plg.national_hint": (
        "Biểu mẫu và chỉ tiêu chung cho mọi tỉnh", "Forms and indicators every province uses"
    ),
    "plg.implements": ("Thực hiện văn bản", "Implements"),
    "plg.forms": ("Biểu mẫu", "Forms"),
    "plg.indicators": ("Chỉ tiêu", "Indicators"),
    "plg.all": ("Thông tin kỹ thuật: mọi plugin đã nạp", "Technical details: every loaded plugin"),
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
