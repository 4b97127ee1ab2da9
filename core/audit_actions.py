"""Every action the audit log records, with what it means to an officer in Vietnamese and in English.

One table, read by the audit page, its Excel export, ``rasoat audit`` and a round's history (a round's
``create`` is ``round.create`` here). A module that writes a new action adds its line here: in the test
suite an audit line whose action has no label fails the test that wrote it (``tests/conftest.py`` sets
``RASOAT_STRICT_AUDIT=1``, which the servers and commands it starts inherit); elsewhere it is written
anyway with a warning in the log, and the pages show its code.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

log = logging.getLogger(__name__)

#: action code → (Vietnamese, English)
ACTIONS: dict[str, tuple[str, str]] = {
    # signing in and accounts
    "login.ok": ("Đăng nhập", "Signed in"),
    "login.failed": ("Đăng nhập không thành công", "Sign-in failed"),
    "login.throttled": ("Tạm chặn đăng nhập sau nhiều lần sai", "Sign-in blocked after repeated failures"),
    "user.add": ("Tạo tài khoản", "Account created"),
    "user.set_role": ("Đổi vai trò, đơn vị của tài khoản", "Account's role or units changed"),
    "user.set_password": ("Đặt mật khẩu mới", "New password set"),
    "user.disable": ("Khoá tài khoản", "Account disabled"),
    "user.enable": ("Mở lại tài khoản", "Account re-enabled"),
    "user.api_token": ("Cấp mã truy cập API", "API token issued"),
    "user.reset_link": ("Cấp đường dẫn đặt lại mật khẩu", "Password-reset link issued"),
    "user.reset_link_used": ("Đặt lại mật khẩu qua đường dẫn", "Password reset through a link"),
    "user.unlock": ("Gỡ chặn đăng nhập", "Sign-in block lifted"),
    # collectors and phones
    "collector.add": ("Thêm người thu thập", "Collector added"),
    "collector.revoke": ("Thu hồi quyền người thu thập", "Collector revoked"),
    "collector.token_rotate": ("Cấp lại mã QR cho người thu thập", "Collector's QR code renewed"),
    "instances.import": ("Nhập bản ghi chép từ điện thoại", "Records imported from phones"),
    # rounds (a round's history shows the part after "round.")
    "round.create": ("Tạo đợt", "Round created"),
    "round.open": ("Mở đợt", "Round opened"),
    "round.close": ("Đóng đợt", "Round closed"),
    "round.reopen": ("Mở lại đợt", "Round reopened"),
    "round.archive": ("Lưu trữ đợt", "Round archived"),
    "round.assign": ("Giao người thu thập", "Collectors assigned"),
    "round.rule": ("Đổi trạng thái được tính", "Counted review states changed"),
    "round.rollforward": ("Chuyển danh sách sang đợt mới", "Lists rolled forward"),
    "round.add_form": ("Thêm biểu mẫu vào đợt", "Form added to the round"),
    # forms, unit lists
    "form.publish": ("Công bố biểu mẫu", "Form published"),
    "form.draft.save": ("Lưu bản nháp biểu mẫu", "Form draft saved"),
    "form.draft.discard": ("Bỏ bản nháp biểu mẫu", "Form draft discarded"),
    "units.import": ("Nạp danh sách đơn vị", "Unit list loaded"),
    # records: review, edits, reading personal data
    "submission.review": ("Duyệt bản ghi", "Record reviewed"),
    "submission.edit": ("Sửa bản ghi", "Record edited"),
    "submission.attachment": ("Mở tệp đính kèm của bản ghi", "Record's attachment opened"),
    "view.submissions": ("Xem danh sách bản ghi", "Records listed"),
    "view.submission": ("Xem một bản ghi", "Record viewed"),
    "view.attachment": ("Xem tệp đính kèm", "Attachment viewed"),
    "view.management": ("Xem sổ quản lý người", "Management register viewed"),
    "roster.download": ("Tải danh sách người năm trước", "Last year's roster downloaded"),
    "view.persons": ("Xem danh sách người theo dõi", "Followed persons listed"),
    "view.person": ("Xem hồ sơ một người", "Person's record viewed"),
    "entity.resolve": ("Xử lý xung đột hồ sơ người", "Person record conflict resolved"),
    "entity.create": ("Tạo thực thể qua API", "Entity created through the API"),
    "entity.bulk_create": ("Tạo nhiều thực thể qua API", "Entities created in bulk through the API"),
    "entity.update": ("Sửa thực thể qua API", "Entity updated through the API"),
    "entity.delete": ("Xoá thực thể qua API", "Entity deleted through the API"),
    "entity.move": ("Chuyển hồ sơ người sang xã khác (Mẫu 08)",
                    "Person record moved to another commune (Form 08)"),
    "entity.error": ("Bản ghi không cập nhật được hồ sơ thực thể", "A record could not change its entity"),
    "roster.to_entities": ("Chuyển danh sách người năm trước thành hồ sơ người",
                           "Last year's roster made into person records"),
    "entities.list": ("Tải danh sách thực thể", "Entity list read"),
    "entities.read": ("Xem một thực thể", "Entity viewed"),
    "entities.versions": ("Xem lịch sử thực thể", "Entity history viewed"),
    "entities.odata": ("Đọc thực thể qua OData", "Entities read through OData"),
    "entities.download": ("Điện thoại tải danh sách thực thể", "Entity list sent to a phone"),
    "entities.approval": ("Đổi cách duyệt thực thể", "Entity approval setting changed"),
    "entities.force_backlog": ("Xử lý bản ghi thực thể còn chờ", "Entity backlog processed"),
    # exports
    "export.raw": ("Xuất dữ liệu gốc", "Raw data exported"),
    "export.raw.refused": ("Từ chối xuất dữ liệu gốc", "Raw data export refused"),
    "export.report": ("Xuất báo cáo chỉ tiêu", "Indicator report exported"),
    "export.assessment": ("Xuất kết quả đánh giá QĐ 28", "QĐ 28 assessment exported"),
    "export.audit": ("Xuất nhật ký thao tác", "Audit log exported"),
    # keys and protection of person records
    "key.create": ("Tạo khoá của dự án", "Project key created"),
    "key.change_passphrase": ("Đổi cụm mật khẩu của khoá", "Key passphrase changed"),
    "key.rotate": ("Thay khoá của dự án", "Project key replaced"),
    "key.rewrap": ("Bọc lại khoá cũ", "Older keys re-wrapped"),
    "key.set_forms": ("Chọn biểu mẫu mã hoá", "Encrypted forms chosen"),
    "key.unlock": ("Mở khoá của dự án", "Project key unlocked"),
    "key.unlock_failed": ("Mở khoá không thành công", "Key unlock failed"),
    "key.decrypt": ("Giải mã bản ghi", "Records decrypted"),
    "key.derive": ("Lấy số liệu thống kê từ bản ghi mã hoá", "Statistics taken from encrypted records"),
    "protection.key_create": ("Tạo khoá bảo vệ bản ghi", "Record protection key created"),
    "protection.key_rotate": ("Thay khoá bảo vệ bản ghi", "Record protection key replaced"),
    "protection.rewrap": ("Bọc lại khoá của bản ghi", "Record keys re-wrapped"),
    "protection.migrate": ("Bảo vệ các bản ghi đã có", "Existing records protected"),
    # QĐ 28 assessment
    "assessment.fact": ("Nhập số liệu đánh giá", "Assessment figure entered"),
    "assessment.propose": ("Đề nghị công nhận", "Recognition proposed"),
    "assessment.accept": ("Tiếp nhận đề nghị", "Proposal accepted"),
    "assessment.send_back": ("Trả lại đề nghị", "Proposal sent back"),
    "assessment.approve": ("Phê duyệt danh sách", "List approved"),
    "assessment.reopen": ("Mở lại danh sách đã duyệt", "Approved list reopened"),
    # the installation
    "backup.create": ("Sao lưu", "Backup made"),
    "restore": ("Khôi phục từ bản sao lưu", "Restored from a backup"),
    "demo.setup": ("Tạo dữ liệu dùng thử", "Demo data set up"),
}

#: set to 1 by the test suite: an action without a label is then an error where it is written
STRICT_ENV = "RASOAT_STRICT_AUDIT"


_copying: ContextVar[bool] = ContextVar("rasoat_audit_copying", default=False)


@contextmanager
def copying() -> Iterator[None]:
    """Lines copied from another store (a migration, an older rasoat) keep the actions they were written
    with, labelled or not: they are history, not something this code writes."""
    token = _copying.set(True)
    try:
        yield
    finally:
        _copying.reset(token)


class UnlabelledAction(ValueError):
    """An audit action with no line in ``ACTIONS`` (raised only under ``RASOAT_STRICT_AUDIT=1``)."""


def check(action: str) -> None:
    """Called for every audit line written."""
    if action in ACTIONS or _copying.get():
        return
    message = (f"Hành động '{action}' chưa có nhãn trong core/audit_actions.py / "
               f"audit action '{action}' has no label in core/audit_actions.py")
    if os.environ.get(STRICT_ENV) == "1":
        raise UnlabelledAction(message)
    log.warning("%s", message)


def label(action: str, lang: str) -> str:
    """The action in ``lang`` ("vi" or "en"); its code when it has no label (a line from an older rasoat)."""
    pair = ACTIONS.get(action)
    if pair is None:
        return action
    return pair[1] if lang == "en" else pair[0]


def both(action: str) -> str:
    """"Vietnamese / English", for the Excel export and the command line (one file for both readers)."""
    pair = ACTIONS.get(action)
    return f"{pair[0]} / {pair[1]}" if pair is not None else action
