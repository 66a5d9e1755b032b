"""The demo forum's synthetic threads and posts (Vietnamese and English).

Most posts are ordinary; about ten show risk cues *in words only* (an adult asking a
child's age and for secrecy, offers to trade photos, bullying, a cry for help, a child
offered "for adoption" for money) so the analyzer has realistic, non-graphic input.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DemoPost:
    post_id: int
    author: str
    lang: str
    text: str
    images: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class DemoThread:
    thread_id: int
    slug: str
    title: str
    posts: tuple[DemoPost, ...]


def _posts(start: int, rows: list[tuple[str, str, str] | tuple[str, str, str, tuple[str, ...]]]):
    """Number posts consecutively from ``start`` so ids stay stable and unique."""
    out = []
    for offset, row in enumerate(rows):
        author, lang, text, *rest = row
        out.append(DemoPost(start + offset, author, lang, text, rest[0] if rest else ()))
    return tuple(out)


THREADS: tuple[DemoThread, ...] = (
    DemoThread(1, "thong-bao-nha-truong", "Thông báo nhà trường / School notices", _posts(101, [
        ("Cô Lan (GVCN 7B)", "vi", "Thứ Hai tuần sau học sinh khối 7 tham gia ngày hội đọc sách. "
         "Các em mang theo một cuốn sách yêu thích nhé.", ("banner-1.png",)),
        ("Thầy Minh", "vi", "Lịch thi học kỳ I đã được cập nhật trên bảng tin của trường. "
         "Phụ huynh vui lòng nhắc các con ôn tập đều đặn."),
        ("School office", "en", "Reminder: the school gate opens at 6:45. Please do not leave "
         "children waiting outside before that time."),
        ("Cô Hạnh", "vi", "Câu lạc bộ vẽ tranh tuyển thành viên mới, sinh hoạt chiều thứ Năm.",
         ("drawing-club.jpg",)),
        ("School office", "en", "The swimming lessons start next month. Parents must sign the "
         "consent form and return it to the class teacher."),
        ("Thầy Minh", "vi", "Nhà trường tổ chức buổi nói chuyện về an toàn trên mạng cho học "
         "sinh: không chia sẻ thông tin cá nhân với người lạ."),
        ("Cô Lan (GVCN 7B)", "vi", "Cảm ơn các phụ huynh đã ủng hộ quỹ khuyến học của lớp."),
        ("School office", "en", "Lost and found: a blue water bottle and a red jacket are at "
         "the front desk.", ("lost-found.png",)),
    ])),
    DemoThread(2, "hoi-dap-nuoi-day-con", "Hỏi đáp nuôi dạy con / Parenting advice", _posts(201, [
        ("Mẹ Bống", "vi", "Con mình 9 tuổi, nên cho con dùng điện thoại bao nhiêu phút mỗi ngày "
         "thì hợp lý ạ?"),
        ("Bố Tí", "vi", "Nhà mình đặt giới hạn 1 tiếng, và điện thoại để ở phòng khách, không "
         "mang vào phòng ngủ."),
        ("Anna P.", "en", "We use parental controls and we talk every evening about what the "
         "kids saw online. Talking works better than spying."),
        ("Mẹ Na", "vi", "Các mẹ có kinh nghiệm dạy con tự đi học bằng xe đạp không?",
         ("bicycle.jpg",)),
        ("Tuan N.", "en", "Tip: teach children that a real friend never asks them to keep "
         "secrets from their parents."),
        ("Mẹ Bống", "vi", "Cảm ơn mọi người, mình sẽ thử cách để điện thoại ở phòng khách."),
        ("Linh", "vi", "Bé nhà mình bị bạn trêu ở lớp, mình nên nói chuyện với cô giáo thế nào?"),
        ("Anna P.", "en", "Write down what happened, dates and names, and ask the teacher for "
         "a meeting. Stay calm in front of your child."),
    ])),
    DemoThread(3, "tong-dai-111", "Tổng đài 111 — Child helpline", _posts(301, [
        ("Ban quản trị", "vi", "Tổng đài quốc gia bảo vệ trẻ em 111 hoạt động 24/7, miễn phí. "
         "Hãy gọi 111 khi thấy trẻ em bị xâm hại hoặc gặp nguy hiểm.", ("hotline-111.png",)),
        ("Moderators", "en", "Call 111 (free, 24/7) if a child is at risk. You can also report "
         "a post to the moderators with the Report button."),
        ("Ban quản trị", "vi", "Nếu con bạn nhận được tin nhắn lạ đòi gặp mặt hoặc đòi ảnh, "
         "hãy giữ lại bằng chứng và gọi 111."),
        ("Hoa", "vi", "Mình đã gọi 111 một lần, các anh chị tư vấn rất tận tình."),
        ("Moderators", "en", "New rule: accounts that ask members their age or school in "
         "public threads will be reviewed."),
    ])),
    DemoThread(4, "giao-luu-hoc-sinh", "Giao lưu học sinh / Student chat", _posts(401, [
        ("mai_lop6", "vi", "Có ai chơi cờ vua không, cuối tuần mình lập nhóm nhé!",
         ("chess.png",)),
        ("anh_trai_tot_bung", "vi", "Em mấy tuổi rồi? Em học trường nào? Đừng nói với bố mẹ "
         "nhé, đây là bí mật của hai anh em mình. Mình chuyển sang nói chuyện riêng trên Zalo "
         "đi."),
        ("kid_gamer12", "en", "Anyone finished the science project? I need help with the poster."),
        ("cool_uncle_88", "en", "How old are you? You seem very mature for your age. Let's keep "
         "this our little secret and move to a private app, add me on Telegram, I'll send you "
         "game cards."),
        ("nguoi_an_danh", "vi", "Con bé lớp 7B xấu xí lắm, cả lớp đừng ai chơi với nó, gửi ảnh "
         "nó vào nhóm cho mọi người cười đi."),
        ("sad_night", "en", "I can't take it anymore. I want to hurt myself and nobody would "
         "notice if I was gone."),
        ("buon_qua", "vi", "Mình mệt mỏi quá, không muốn sống nữa, không ai hiểu mình cả."),
        ("mai_lop6", "vi", "@buon_qua bạn ơi, bạn gọi 111 nhé, mình cũng ở đây nghe bạn nói."),
        ("troll_2010", "en", "Nobody likes you, everyone at school thinks you're a loser, just "
         "leave the group already."),
        ("anh_hao_phong", "vi", "Anh tặng em điện thoại mới nếu em ra gặp anh một mình, nhớ "
         "đừng kể với ai nhé."),
    ])),
    DemoThread(5, "rao-vat", "Rao vặt / Classifieds", _posts(501, [
        ("Shop sách cũ", "vi", "Thanh lý sách giáo khoa lớp 5, còn mới 90%.", ("books.jpg",)),
        ("collector_x", "en", "Looking to trade photos with younger members, private only, DM "
         "me. I pay with gift cards."),
        ("Bán xe đạp", "vi", "Bán xe đạp trẻ em cho bé 6-9 tuổi, giá 500k.", ("bike-sale.jpg",)),
        ("doi_anh_kin", "vi", "Em nào muốn đổi ảnh riêng tư thì nhắn tin riêng, có thẻ cào tặng."),
        ("Gia sư Toán", "vi", "Nhận dạy kèm Toán lớp 6-9 tại nhà, có kinh nghiệm 5 năm."),
        ("can_tien_gap", "vi", "Cần cho con nuôi bé gái 3 tuổi, gia đình nào hỗ trợ 50 triệu "
         "thì liên hệ, không cần giấy tờ."),
        ("quick_sale", "en", "Baby for adoption, healthy boy, serious buyers only, price "
         "negotiable, cash, no paperwork."),
        ("Music school", "en", "Piano lessons for children, trial lesson free on Saturdays.",
         ("piano.png",)),
    ])),
)

PAGE_SIZE = 5

# What an analyst would say of each harmful demo post (every other post is harmless): the
# demo's truth, against which tests/test_demo_truth.py checks the shipped text model.
HARMFUL: dict[int, tuple[str, ...]] = {
    402: ("grooming",),
    404: ("grooming",),
    405: ("bullying",),
    406: ("self_harm",),
    407: ("self_harm",),
    409: ("bullying",),
    410: ("grooming",),
    502: ("sexual_exploitation",),
    504: ("sexual_exploitation",),
    506: ("trafficking",),
    507: ("trafficking",),
}
