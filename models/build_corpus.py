# ruff: noqa: E501 - the template tables read best one example per line, however long.
"""Build harmwatch's seed corpus: templated, non-graphic Vietnamese and English examples.

There is no public labelled corpus of Vietnamese child-safety text, and real harmful posts
must not be copied into a repository. So the project writes its own: short templates for each
category and for hard negatives (news, prevention campaigns, school notices, parenting advice,
hotline 111 announcements, court reports) that use the same words in benign ways. Slots
(apps, gifts, places, ages, cities, names, sums) are filled at random with a fixed seed, and
a share of the Vietnamese texts is re-typed without diacritics or in teencode, the way
children and offenders actually type. Nothing is graphic: the harm is named, never described.

This is a bootstrap corpus, not a sample of real traffic; see ``models/DATASHEET.md``.
Run ``.venv/bin/python -m models.build_corpus`` to rewrite ``models/data/seed_corpus.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from pathlib import Path

from classifiers.text.normalize import fold

OUT = Path(__file__).resolve().parent / "data" / "seed_corpus.jsonl"
SEED = 20261129
VARIANTS_PER_TEMPLATE = 12
NEGATIVE_VARIANTS = 16

SLOTS: dict[str, list[str]] = {
    "adult": ["anh", "chú", "bác", "chị", "anh", "chú"],
    "child": ["em", "con", "cháu", "bé"],
    "app": ["Zalo", "Telegram", "Messenger", "Snapchat", "Discord", "TikTok"],
    "app_en": ["Snapchat", "Telegram", "WhatsApp", "Discord", "Kik", "Instagram"],
    "gift": ["điện thoại mới", "thẻ cào 500k", "skin game", "quần áo đẹp", "kim cương Free Fire",
             "tai nghe xịn"],
    "gift_en": ["a new phone", "a gift card", "some Robux", "V-Bucks", "new sneakers",
                "an iPad"],
    "place": ["quán cà phê", "công viên", "khách sạn gần trường", "nhà anh", "bến xe"],
    "place_en": ["the mall", "the park", "my place", "a hotel near your school",
                 "the bus station"],
    "age": ["11", "12", "13", "14", "15", "16"],
    "grade": ["5", "6", "7", "8", "9"],
    "city": ["Đà Nẵng", "Huế", "Hà Nội", "TP.HCM", "Cần Thơ", "Hải Phòng", "Quảng Nam"],
    "city_en": ["Da Nang", "Hue", "Hanoi", "Ho Chi Minh City", "Manchester", "Ohio"],
    "name": ["Minh", "Lan", "Tuấn", "Hoa", "Nam", "Vy", "Khang", "Thảo"],
    "name_en": ["Jake", "Emma", "Liam", "Sophie", "Noah", "Mia"],
    "money": ["200k", "500k", "1 triệu", "2 triệu"],
    "n": ["3", "5", "7", "9", "12", "15"],
    "school": ["Lê Lợi", "Nguyễn Du", "Trần Phú", "Phan Châu Trinh"],
    "school_en": ["Lincoln Middle School", "Riverside Academy", "St Mary's"],
}

# (labels, language, template). Labels are multi-label; an empty list is a negative.
POSITIVE: list[tuple[list[str], str, str]] = [
    # grooming, vi
    (["grooming"], "vi", "{child} năm nay bao nhiêu tuổi rồi? {adult} thấy {child} rất trưởng thành so với tuổi đó."),
    (["grooming"], "vi", "{child} học lớp mấy? Nhắn tin riêng qua {app} với {adult} nhé, đừng nói với bố mẹ."),
    (["grooming"], "vi", "{adult} sẽ mua cho {child} {gift}, nhưng đây là bí mật của hai chúng ta thôi nhé."),
    (["grooming"], "vi", "Bố mẹ {child} có ở nhà không? Tối nay {adult} đón {child} đi chơi riêng, không cần xin phép đâu."),
    (["grooming"], "vi", "Xóa hết tin nhắn sau khi đọc nhé {child}, chuyện của mình không ai được biết."),
    (["grooming"], "vi", "{child} ơi kết bạn {app} với {adult} đi, {adult} nạp thẻ game cho {child}."),
    (["grooming"], "vi", "e bn tuổi r? ib riêng a qua {app} nhé, đừng ns vs ai"),
    (["grooming"], "vi", "em may tuoi roi? gap rieng anh o {place} nhe, dung ke voi bo me"),
    (["grooming"], "vi", "Người lớn không hiểu {child} bằng {adult} đâu. Nhắn {app} cho {adult} nhé, đừng kể với thầy cô."),
    (["grooming"], "vi", "Nếu {child} ngoan và giữ bí mật, {adult} sẽ tặng {child} {gift}, mình gặp riêng ở {place} nhé."),
    # grooming, en
    (["grooming"], "en", "how old are you? you seem really mature for your age"),
    (["grooming"], "en", "what grade r u in? add me on {app_en}, don't tell your parents"),
    (["grooming"], "en", "I'll buy you {gift_en} but it has to be our little secret"),
    (["grooming"], "en", "are your parents home? we could meet up alone at {place_en}"),
    (["grooming"], "en", "delete our chats after you read them ok? nobody would understand us"),
    (["grooming"], "en", "you can tell me anything, your parents don't get you like I do. let's move to {app_en}"),
    (["grooming"], "en", "hey cutie, asl? switch to a private chat on {app_en}"),
    (["grooming"], "en", "if you keep this a secret I'll send you {gift_en}, just come alone to {place_en}"),
    # sexual exploitation (named, never described)
    (["sexual_exploitation"], "vi", "Gửi ảnh riêng tư của em cho {adult} xem đi, không ai biết đâu."),
    (["sexual_exploitation"], "vi", "Ai có link clip học sinh thì trao đổi qua {app}, trả tiền đầy đủ."),
    (["sexual_exploitation"], "vi", "Nếu em không gửi thêm thì {adult} sẽ tung ảnh của em lên mạng cho cả lớp xem."),
    (["sexual_exploitation"], "vi", "{adult} trả {money} để em gửi ảnh nóng qua {app}."),
    (["sexual_exploitation"], "vi", "Bán link ảnh trẻ em, nhắn {app} để mua, giá {money}."),
    (["sexual_exploitation"], "vi", "cởi áo ra chụp cho {adult} một tấm, xóa ngay sau khi gửi"),
    (["sexual_exploitation"], "vi", "gui anh hinh rieng tu cua em di, khong thi anh gui cho bo me em xem"),
    (["sexual_exploitation"], "en", "send me some pics of yourself, just for me"),
    (["sexual_exploitation"], "en", "trading young content, dm on {app_en} for links"),
    (["sexual_exploitation"], "en", "send more or else I'll post your pics to everyone at your school"),
    (["sexual_exploitation"], "en", "I'll pay ${n}0 for your photos, nobody has to know"),
    (["sexual_exploitation"], "en", "selling teen videos folders, payment through {app_en}"),
    (["sexual_exploitation"], "en", "s.e.n.d n00dz or I'll leak your pics"),
    # violence
    (["violence"], "vi", "Tao sẽ giết mày nếu mày còn méc cô giáo."),
    (["violence"], "vi", "Nhà bên cạnh ngày nào cũng đánh thằng bé bằng roi, tối qua nghe khóc rất lâu."),
    (["violence"], "vi", "Ông ta nhốt con bé trong nhà kho suốt hai ngày không cho ăn."),
    (["violence"], "vi", "{adult} sẽ đánh chết {child} nếu {child} nói chuyện này với ai."),
    (["violence"], "vi", "Cha dượng của {name} đánh em đến bầm tím rồi đuổi ra đường lúc nửa đêm."),
    (["violence"], "vi", "tao dam may neu may con ve nha tre, nho day"),
    (["violence"], "en", "I'll hurt you if you tell your teacher"),
    (["violence"], "en", "my stepdad beats my little brother with a belt every night"),
    (["violence"], "en", "he locked the kid in the basement for days without food"),
    (["violence"], "en", "I'm going to kill that kid next door if he comes near my car again"),
    (["violence"], "en", "she hits her son until he bruises and tells him to lie about it"),
    # bullying
    (["bullying"], "vi", "Đồ béo xấu xí, cả lớp đều ghét mày."),
    (["bullying"], "vi", "Quay clip bắt nạt con nhỏ lớp {grade} rồi tung lên nhóm cho mọi người cười."),
    (["bullying"], "vi", "Thằng {name} ngu như bò, mai cả trường tẩy chay nó."),
    (["bullying"], "vi", "Đăng ảnh xấu của {name} lên page trường đi, cho nó nhục."),
    (["bullying"], "vi", "do an hai, ca lop ghet may, dung den truong nua"),
    (["bullying"], "vi", "{name} vô dụng lắm, cả nhóm đừng ai chơi với nó nữa."),
    (["bullying"], "en", "you're so ugly {name_en}, everyone hates you"),
    (["bullying"], "en", "nobody likes you, just go die"),
    (["bullying"], "en", "let's share the embarrassing video of {name_en} to everyone in school"),
    (["bullying"], "en", "ur such a loser, no one wants you at the party"),
    (["bullying"], "en", "we made a group chat just to make fun of {name_en}, add everyone"),
    # self-harm
    (["self_harm"], "vi", "Em không muốn sống nữa, chẳng ai cần em cả."),
    (["self_harm"], "vi", "Mình đã rạch tay lại tối qua, không biết nói với ai."),
    (["self_harm"], "vi", "Chán sống quá, ngày mai em sẽ kết thúc tất cả."),
    (["self_harm"], "vi", "Con muốn biến mất mãi mãi, bố mẹ sẽ tốt hơn khi không có con."),
    (["self_harm"], "vi", "Mình {age} tuổi và đang tính uống hết vỉ thuốc trong tủ."),
    (["self_harm"], "vi", "e chan song lam r, ko ai can e"),
    (["self_harm"], "en", "I don't want to be here anymore, everyone would be better off without me"),
    (["self_harm"], "en", "I cut myself again last night and I can't tell anyone"),
    (["self_harm"], "en", "I'm going to end it all tonight, sorry mom"),
    (["self_harm"], "en", "there's no reason to live, I'm {age} and so tired of everything"),
    (["self_harm"], "en", "thinking about taking all the pills in the cabinet after school"),
    # trafficking
    (["trafficking"], "vi", "Cần bán bé trai sơ sinh giá {n}0 triệu, liên hệ {app}."),
    (["trafficking"], "vi", "Nhận cho con nuôi, hỗ trợ gia đình {n}0 triệu, không cần giấy tờ."),
    (["trafficking"], "vi", "Tuyển bé gái 14-17 tuổi làm việc nhẹ lương cao, bao ăn ở, đưa sang Trung Quốc."),
    (["trafficking"], "vi", "Có ai muốn nhận nuôi em bé không, giá {n}0 triệu, giao tận nơi ở {city}."),
    (["trafficking"], "vi", "Tuyển gấp nữ 15-17 tuổi làm tiếp viên, không cần CCCD, bao ăn ở."),
    (["trafficking"], "vi", "dan cac be qua bien gioi, bao an o, tra truoc cho gia dinh {money}"),
    (["trafficking"], "en", "baby girl for sale, ${n}000, message on {app_en}"),
    (["trafficking"], "en", "hiring girls aged 15 for easy work abroad, passport arranged"),
    (["trafficking"], "en", "private adoption available, fee ${n}000 cash only, no papers needed"),
    (["trafficking"], "en", "buying a newborn, discreet, will pay well, dm {app_en}"),
    (["trafficking"], "en", "kids available to work in the factory, no documents needed, travel paid"),
    # more phrasings for the thinner categories
    (["violence"], "vi", "Mày mà còn mách bố mẹ thì tao xử mày ngay ở cổng trường."),
    (["violence"], "vi", "Bà ấy hay trói {child} vào ghế rồi đánh khi {child} làm sai bài tập."),
    (["violence"], "vi", "Chú ấy đập đầu thằng bé vào tường chỉ vì nó làm đổ cơm."),
    (["violence"], "en", "if you snitch again I'll break your arm, kid"),
    (["violence"], "en", "the neighbours hear him beating the little girl almost every night"),
    (["violence"], "en", "he threatened to stab his son if the boy told the school"),
    (["bullying"], "vi", "Mai ra cổng trường tụi tao chặn đánh {name} cho nó chừa, quay clip đăng lên luôn."),
    (["bullying"], "vi", "Nhìn mặt {name} là muốn ói, đừng ai ngồi cạnh nó."),
    (["bullying"], "vi", "Cả lớp lập nhóm {app} riêng để chê cười {name} mỗi ngày."),
    (["bullying"], "en", "everyone in class laughs at {name_en}, she should just stay home forever"),
    (["bullying"], "en", "post the photo of {name_en} crying, make it go viral lol"),
    (["bullying"], "en", "you're worthless and your clothes stink, don't sit with us"),
    (["self_harm"], "vi", "Không ai hiểu em, em chỉ muốn ngủ một giấc rồi không tỉnh dậy nữa."),
    (["self_harm"], "vi", "Mình định nhảy cầu tối nay, đừng tìm mình."),
    (["self_harm"], "vi", "Mỗi lần buồn em lại cắt tay, giờ không dừng được."),
    (["self_harm"], "en", "I keep hurting myself when things get bad, I'm {age}"),
    (["self_harm"], "en", "I wrote goodbye letters to my friends today"),
    (["self_harm"], "en", "nobody would even notice if I was gone, I want to die"),
    (["trafficking"], "vi", "Nhận đưa trẻ em {age} tuổi đi làm ở xưởng may xa nhà, trả trước cho bố mẹ {money}."),
    (["trafficking"], "en", "families can send girls {age} and up to work in the city, we pay the parents upfront"),
    (["sexual_exploitation"], "vi", "Có nhóm {app} share clip học sinh, ai muốn vào thì chuyển {money}."),
    (["sexual_exploitation"], "en", "got new folders of kids pics, swap on {app_en}"),
    (["grooming"], "vi", "{child} xinh quá, {adult} chở {child} đi ăn rồi về nhà {adult} chơi nhé, đừng kể với ai."),
    (["grooming"], "en", "you're different from other kids your age, let's keep our chats private ok?"),
    # several harms at once
    (["grooming", "sexual_exploitation"], "vi", "{child} mấy tuổi rồi? Gửi ảnh riêng tư cho {adult} qua {app} nhé, bí mật của hai đứa mình."),
    (["grooming", "sexual_exploitation"], "en", "how old are you? send me a selfie on {app_en}, it's our secret"),
    (["bullying", "self_harm"], "vi", "Cả lớp tẩy chay em, em chán sống lắm rồi."),
    (["bullying", "self_harm"], "en", "everyone at school calls me ugly, I just want to disappear forever"),
    (["violence", "trafficking"], "vi", "Nó đánh mấy đứa nhỏ rồi bắt đi bán vé số cả ngày, không cho đi học."),
]

HARD_NEGATIVE: list[tuple[str, str]] = [
    ("vi", "Công an {city} bắt đối tượng dụ dỗ trẻ em qua {app}; phụ huynh được khuyến cáo không để con nhắn tin riêng với người lạ."),
    ("vi", "Chiến dịch 'Nói không với bạo lực học đường' tại {city}: học sinh được hướng dẫn cách báo cáo khi bị bắt nạt."),
    ("vi", "Tổng đài 111 miễn phí 24/7: nếu em bị ai yêu cầu giữ bí mật hay gửi ảnh riêng tư, hãy gọi ngay."),
    ("vi", "Thông báo: học sinh lớp {grade} nộp ảnh thẻ 3x4 cho giáo viên chủ nhiệm trước thứ Sáu."),
    ("vi", "Cha mẹ nên hỏi con đang chat với ai trên {app} và dạy con không gửi ảnh cho người lạ."),
    ("vi", "Tòa án nhân dân {city} tuyên phạt bị cáo {n} năm tù về tội mua bán người dưới 16 tuổi."),
    ("vi", "Nếu bạn có ý nghĩ tự tử hoặc muốn làm hại bản thân, hãy gọi đường dây nóng 111 hoặc nói với người lớn tin cậy."),
    ("vi", "Bé nhà mình năm nay {age} tuổi rồi, học lớp {grade}, các mẹ tư vấn sách tham khảo với."),
    ("vi", "Shop bán quần áo trẻ em giá rẻ, ib {app} để đặt hàng nhé."),
    ("vi", "Nạp thẻ game ở đâu rẻ nhất vậy mọi người? Con mình đòi mua skin mới."),
    ("vi", "Hội thảo phòng chống xâm hại trẻ em tổ chức tại trường THCS {school} sáng thứ Bảy."),
    ("vi", "Thủ tục nhận con nuôi hợp pháp được hướng dẫn tại UBND phường, hoàn toàn không mất phí."),
    ("vi", "Tiệc sinh nhật bất ngờ cho mẹ tối nay, cả nhà giữ bí mật nhé!"),
    ("vi", "Trận đấu hôm qua đội bóng thiếu nhi {city} đánh bại đối thủ 3-0."),
    ("vi", "Một nữ sinh ở {city} bị bạn đánh, nhà trường đã kỷ luật các học sinh liên quan và mời phụ huynh lên làm việc."),
    ("vi", "Chán quá, trời mưa cả tuần không đi chơi được."),
    ("vi", "e ơi mai đi học nhớ mang áo mưa nhé, ko là ướt hết đó"),
    ("vi", "Họp phụ huynh lúc 8h sáng Chủ nhật, mời bố mẹ các em lớp {grade} đến đúng giờ."),
    ("vi", "Phim tài liệu về nạn buôn bán trẻ em này rất đáng xem, giúp nâng cao nhận thức cộng đồng."),
    ("vi", "Thầy cô nhắc học sinh: đừng kết bạn với người lạ trên mạng và đừng giữ bí mật khi ai đó làm em sợ."),
    ("vi", "Sở Giáo dục {city} triển khai tiết học kỹ năng: nhận biết dấu hiệu bị dụ dỗ, bắt nạt và cách xin giúp đỡ."),
    ("vi", "Bộ Công an cảnh báo thủ đoạn tuyển lao động lương cao rồi đưa người sang Campuchia trái phép."),
    ("vi", "UNICEF và {city} ra mắt ứng dụng giúp trẻ báo cáo bạo lực, gọi 111 khi cần hỗ trợ khẩn cấp."),
    ("vi", "Con mình học lớp {grade}, hay bị bạn trêu là béo, các mẹ có cách nào giúp con tự tin hơn không?"),
    ("vi", "Bệnh viện Nhi {city} tư vấn: khi trẻ buồn bã kéo dài, cha mẹ nên lắng nghe và đưa con đi khám tâm lý."),
    ("vi", "Bị cáo khai đã nhắn tin làm quen với nạn nhân qua {app}; tòa tuyên {n} năm tù."),
    ("vi", "Cuối tuần cả nhà đi công viên, bé {name} chơi vui lắm."),
    ("vi", "Bán xe đạp trẻ em còn mới, giá {money}, liên hệ {app}."),
    ("vi", "hom nay con hoc lop may gio ve vay me?"),
    ("vi", "Lớp {grade}A quyên góp sách vở cho các bạn vùng lũ, mỗi bạn ủng hộ một ít."),
    ("en", "Police in {city_en} arrested a man who groomed children online; parents are urged to check their kids' apps."),
    ("en", "Our school's anti-bullying week starts Monday: students will learn how to report harassment."),
    ("en", "If someone asks you to keep a secret or send photos, call the child helpline 111, it's free."),
    ("en", "Reminder: please send a photo of your child for the school ID card by Friday."),
    ("en", "Parenting tip: ask your kids who they talk to on {app_en} and teach them never to share pictures with strangers."),
    ("en", "The court sentenced the defendant to {n} years for trafficking minors across the border."),
    ("en", "If you're having thoughts of suicide or self-harm, please reach out to a trusted adult or call the hotline."),
    ("en", "My daughter just turned {age}, any book recommendations for her grade?"),
    ("en", "Selling kids' clothes, barely used, message me for prices."),
    ("en", "Where can I buy a gift card for my son's game?"),
    ("en", "Workshop on preventing child abuse at {school_en} this Saturday, all parents welcome."),
    ("en", "We're planning a surprise party for grandma, keep it a secret!"),
    ("en", "We beat them 3-0 in yesterday's match, the kids played great."),
    ("en", "I'm so bored, it's been raining all week."),
    ("en", "This documentary on child trafficking is hard to watch but important."),
    ("en", "How old is your baby now? Ours just started crawling."),
    ("en", "Legal adoption guide: agencies must never charge fees for placing a child."),
    ("en", "The game update lets kids add friends only with parental approval."),
    ("en", "Teachers in {city_en} trained to spot signs of abuse and neglect in students."),
    ("en", "New report: online grooming cases rose last year, experts call for safer apps."),
    ("en", "Mental health week: talk to someone if you feel like hurting yourself, you are not alone."),
    ("en", "The coach told the team to keep the new playbook secret until the tournament."),
    ("en", "My son is {age} and wants {app_en}, what privacy settings do you recommend?"),
    ("en", "Charity run in {city_en} raises money for children's shelters."),
    ("en", "Can someone send me the pics from the school trip? My kid wants them for the album."),
]

TEENCODE_SWAPS = {"không": "ko", "gì": "j", "được": "dc", "với": "vs", "rồi": "r",
                  "biết": "bik", "em": "e", "anh": "a", "bạn": "bn", "nói": "ns"}


OPENERS = {"vi": ["", "", "", "ê ", "này ", "nghe nè, ", "ơi ", "thật sự là "],
           "en": ["", "", "", "hey ", "ok so ", "listen, ", "honestly ", "lol "]}
CLOSERS = {"vi": ["", "", "", " nhé", " đó", " 😢", " ...", "!!"],
           "en": ["", "", "", " ok?", " lol", " 😢", " ...", "!!"]}


def _fill(template: str, language: str, rng: random.Random) -> str:
    """Fill the slots and add a chatty opener or closer, so variants differ in form too."""
    fields = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    text = template.format(**{name: rng.choice(SLOTS[name]) for name in fields})
    return rng.choice(OPENERS[language]) + text + rng.choice(CLOSERS[language])


def _teencode(text: str) -> str:
    return " ".join(TEENCODE_SWAPS.get(word, word) for word in text.split(" "))


def _retype(text: str, language: str, rng: random.Random) -> str:
    """Re-type a share of Vietnamese texts the way people chat: no diacritics, or teencode."""
    if language != "vi":
        return text.lower() if rng.random() < 0.2 else text
    roll = rng.random()
    if roll < 0.25:
        return fold(text.lower())
    if roll < 0.45:
        return _teencode(text.lower())
    return text


def _template_splits(sources: list[tuple[list[str], str, str, str]]) -> list[str]:
    """Assign whole templates to splits, so test phrasings never occur in training.

    Within each group (kind, first label, language) templates are ordered by a hash and
    dealt round-robin: one in seven to test, one in seven to validation, the rest to train.
    """
    groups: dict[tuple[str, str, str], list[int]] = {}
    for index, (labels, lang, _, kind) in enumerate(sources):
        groups.setdefault((kind, labels[0] if labels else "-", lang), []).append(index)
    splits = ["train"] * len(sources)
    for members in groups.values():
        ordered = sorted(members, key=lambda i: hashlib.sha256(sources[i][2].encode()).hexdigest())
        for position, index in enumerate(ordered):
            splits[index] = {0: "test", 1: "validation"}.get(position % 7, "train")
    return splits


def build() -> list[dict]:
    """All examples, de-duplicated, each with labels, language, kind, template id and split."""
    rng = random.Random(SEED)
    seen: set[str] = set()
    rows = []
    sources = [(labels, lang, tpl, "positive") for labels, lang, tpl in POSITIVE]
    sources += [([], lang, tpl, "hard_negative") for lang, tpl in HARD_NEGATIVE]
    splits = _template_splits(sources)
    for index, (labels, lang, template, kind) in enumerate(sources):
        for _ in range(VARIANTS_PER_TEMPLATE if labels else NEGATIVE_VARIANTS):
            text = _retype(_fill(template, lang, rng), lang, rng)
            if text in seen:
                continue
            seen.add(text)
            rows.append({"text": text, "labels": labels, "lang": lang, "kind": kind,
                         "template": f"{kind}-{index:03d}", "split": splits[index]})
    return rows


def main() -> int:
    rows = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} examples → {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
