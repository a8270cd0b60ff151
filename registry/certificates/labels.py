"""The printed certificate's wording in the holder's languages (until gettext catalogues exist).

Tajik, Kyrgyz and Kazakh in Cyrillic, Uzbek in Latin script (the official alphabet, with
U+02BB in oʻ and gʻ). Labels are noun phrases so no language needs to inflect a value.
"""

from __future__ import annotations

LANGUAGES = ("tg", "ky", "uz", "kk", "ru", "en")

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "language": "English",
        "title": "Medical examination certificate",
        "statement": (
            "The holder meets the medical examination requirements of the destination country "
            "for the stated purpose."
        ),
        "certificate_id": "Certificate number",
        "holder": "Holder",
        "birth_date": "Date of birth",
        "destination": "Destination country",
        "purpose": "Purpose",
        "valid_from": "Valid from",
        "valid_until": "Valid until",
        "clinic": "Clinic",
        "issued": "Issued",
        "no_results": "This certificate contains no medical test results.",
        "verify": (
            "To check it, scan the QR code, or enter the certificate number and date of birth at"
        ),
    },
    "ru": {
        "language": "Русский",
        "title": "Сертификат о медицинском освидетельствовании",
        "statement": (
            "Владелец сертификата соответствует требованиям страны назначения "
            "к медицинскому освидетельствованию для указанной цели."
        ),
        "certificate_id": "Номер сертификата",
        "holder": "Владелец",
        "birth_date": "Дата рождения",
        "destination": "Страна назначения",
        "purpose": "Цель",
        "valid_from": "Действителен с",
        "valid_until": "Действителен по",
        "clinic": "Медицинская организация",
        "issued": "Выдан",
        "no_results": "Сертификат не содержит результатов медицинских анализов.",
        "verify": (
            "Для проверки отсканируйте QR-код или введите номер сертификата и дату рождения "
            "на сайте"
        ),
    },
    "kk": {
        "language": "Қазақша",
        "title": "Медициналық куәландыру туралы сертификат",
        "statement": (
            "Сертификат иесі баратын елдің көрсетілген мақсат үшін медициналық куәландыру "
            "талаптарына сәйкес келеді."
        ),
        "certificate_id": "Сертификат нөмірі",
        "holder": "Сертификат иесі",
        "birth_date": "Туған күні",
        "destination": "Баратын ел",
        "purpose": "Мақсаты",
        "valid_from": "Жарамдылығының басталуы",
        "valid_until": "Жарамдылығының аяқталуы",
        "clinic": "Медициналық ұйым",
        "issued": "Берілген күні",
        "no_results": "Сертификатта медициналық талдау нәтижелері жоқ.",
        "verify": (
            "Тексеру үшін QR-кодты сканерлеңіз немесе сертификат нөмірі мен туған күнді "
            "мына сайтқа енгізіңіз:"
        ),
    },
    "ky": {
        "language": "Кыргызча",
        "title": "Медициналык кароодон өткөндүгү жөнүндө сертификат",
        "statement": (
            "Сертификаттын ээси бара турган өлкөнүн көрсөтүлгөн максат үчүн медициналык "
            "кароо талаптарына жооп берет."
        ),
        "certificate_id": "Сертификаттын номери",
        "holder": "Сертификаттын ээси",
        "birth_date": "Туулган күнү",
        "destination": "Бара турган өлкө",
        "purpose": "Максаты",
        "valid_from": "Жарактуулугунун башталышы",
        "valid_until": "Жарактуулугунун аякташы",
        "clinic": "Медициналык уюм",
        "issued": "Берилген күнү",
        "no_results": "Сертификатта медициналык анализдердин жыйынтыктары жок.",
        "verify": (
            "Текшерүү үчүн QR-кодду сканерлеңиз же сертификаттын номерин жана туулган күнүн "
            "бул сайтка киргизиңиз:"
        ),
    },
    "tg": {
        "language": "Тоҷикӣ",
        "title": "Шаҳодатнома дар бораи муоинаи тиббӣ",
        "statement": (
            "Дорандаи шаҳодатнома ба талаботи муоинаи тиббии кишвари таъинот барои мақсади "
            "зикршуда мувофиқат мекунад."
        ),
        "certificate_id": "Рақами шаҳодатнома",
        "holder": "Дорандаи шаҳодатнома",
        "birth_date": "Санаи таваллуд",
        "destination": "Кишвари таъинот",
        "purpose": "Мақсад",
        "valid_from": "Оғози мӯҳлати эътибор",
        "valid_until": "Анҷоми мӯҳлати эътибор",
        "clinic": "Муассисаи тиббӣ",
        "issued": "Санаи додан",
        "no_results": "Шаҳодатнома натиҷаҳои таҳлилҳои тиббиро дар бар намегирад.",
        "verify": (
            "Барои санҷиш QR-кодро скан кунед ё рақами шаҳодатнома ва санаи таваллудро "
            "дар ин сомона ворид кунед:"
        ),
    },
    "uz": {
        "language": "Oʻzbekcha",
        "title": "Tibbiy koʻrikdan oʻtganlik toʻgʻrisida sertifikat",
        "statement": (
            "Sertifikat egasi borish mamlakatining koʻrsatilgan maqsad uchun tibbiy koʻrik "
            "talablariga javob beradi."
        ),
        "certificate_id": "Sertifikat raqami",
        "holder": "Sertifikat egasi",
        "birth_date": "Tugʻilgan sana",
        "destination": "Borish mamlakati",
        "purpose": "Maqsad",
        "valid_from": "Amal qilish muddati boshlanishi",
        "valid_until": "Amal qilish muddati tugashi",
        "clinic": "Tibbiyot muassasasi",
        "issued": "Berilgan sana",
        "no_results": "Sertifikatda tibbiy tahlil natijalari yoʻq.",
        "verify": (
            "Tekshirish uchun QR-kodni skanerlang yoki sertifikat raqami va tugʻilgan sanani "
            "ushbu saytda kiriting:"
        ),
    },
}

PURPOSES: dict[str, dict[str, str]] = {
    "en": {
        "pre-departure": "before departure",
        "return": "after return",
        "in-host": "in the host country",
        "periodic": "periodic",
    },
    "ru": {
        "pre-departure": "перед выездом",
        "return": "после возвращения",
        "in-host": "в стране пребывания",
        "periodic": "периодическое",
    },
    "kk": {
        "pre-departure": "жолға шығар алдында",
        "return": "елге оралғаннан кейін",
        "in-host": "қабылдаушы елде",
        "periodic": "мерзімді",
    },
    "ky": {
        "pre-departure": "жолго чыгаар алдында",
        "return": "мекенге кайтып келгенден кийин",
        "in-host": "кабыл алуучу өлкөдө",
        "periodic": "мезгилдүү",
    },
    "tg": {
        "pre-departure": "пеш аз сафар",
        "return": "пас аз бозгашт",
        "in-host": "дар кишвари қабулкунанда",
        "periodic": "даврӣ",
    },
    "uz": {
        "pre-departure": "joʻnab ketishdan oldin",
        "return": "qaytib kelgandan keyin",
        "in-host": "qabul qiluvchi mamlakatda",
        "periodic": "davriy",
    },
}

# The destinations whose rulesets the registry ships: what a verifier can check for.
DESTINATIONS = ("KZ", "RU", "TM")

COUNTRIES: dict[str, dict[str, str]] = {
    "en": {
        "KZ": "Kazakhstan",
        "RU": "Russia",
        "TM": "Turkmenistan",
        "KG": "Kyrgyzstan",
        "TJ": "Tajikistan",
        "UZ": "Uzbekistan",
    },
    "ru": {
        "KZ": "Казахстан",
        "RU": "Россия",
        "TM": "Туркменистан",
        "KG": "Кыргызстан",
        "TJ": "Таджикистан",
        "UZ": "Узбекистан",
    },
    "kk": {
        "KZ": "Қазақстан",
        "RU": "Ресей",
        "TM": "Түрікменстан",
        "KG": "Қырғызстан",
        "TJ": "Тәжікстан",
        "UZ": "Өзбекстан",
    },
    "ky": {
        "KZ": "Казакстан",
        "RU": "Россия",
        "TM": "Түркмөнстан",
        "KG": "Кыргызстан",
        "TJ": "Тажикстан",
        "UZ": "Өзбекстан",
    },
    "tg": {
        "KZ": "Қазоқистон",
        "RU": "Русия",
        "TM": "Туркманистон",
        "KG": "Қирғизистон",
        "TJ": "Тоҷикистон",
        "UZ": "Ӯзбекистон",
    },
    "uz": {
        "KZ": "Qozogʻiston",
        "RU": "Rossiya",
        "TM": "Turkmaniston",
        "KG": "Qirgʻiziston",
        "TJ": "Tojikiston",
        "UZ": "Oʻzbekiston",
    },
}


# The holder slip: a page of its own for the holder alone, never shown to an employer.
SLIP_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Holder slip",
        "keep": "Keep this. Do not show it to an employer or anyone else.",
        "link": "Your personal page: all your certificates and who checked them",
        "code": "Recovery code",
        "lost": (
            "Lost the link? Open the address below and type a certificate number, your date of "
            "birth and the recovery code:"
        ),
        "certificates": "Certificates of this examination",
    },
    "ru": {
        "title": "Памятка владельца",
        "keep": "Сохраните её. Не показывайте работодателю и другим людям.",
        "link": "Ваша личная страница: все ваши сертификаты и кто их проверял",
        "code": "Код восстановления",
        "lost": (
            "Потеряли ссылку? Откройте адрес ниже и введите номер сертификата, дату рождения "
            "и код восстановления:"
        ),
        "certificates": "Сертификаты по этому освидетельствованию",
    },
    "kk": {
        "title": "Иесіне арналған жадынама",
        "keep": "Оны сақтаңыз. Жұмыс берушіге де, басқа ешкімге де көрсетпеңіз.",
        "link": "Жеке парағыңыз: барлық сертификаттарыңыз және оларды кім тексергені",
        "code": "Қалпына келтіру коды",
        "lost": (
            "Сілтемені жоғалттыңыз ба? Төмендегі мекенжайды ашып, сертификат нөмірін, туған "
            "күніңізді және қалпына келтіру кодын енгізіңіз:"
        ),
        "certificates": "Осы куәландырудың сертификаттары",
    },
    "ky": {
        "title": "Ээсине эскертме",
        "keep": "Муну сактаңыз. Иш берүүчүгө да, башка эч кимге да көрсөтпөңүз.",
        "link": "Жеке барагыңыз: бардык сертификаттарыңыз жана аларды ким текшергени",
        "code": "Калыбына келтирүү коду",
        "lost": (
            "Шилтемени жоготтуңузбу? Төмөнкү даректи ачып, сертификаттын номерин, туулган "
            "күнүңүздү жана калыбына келтирүү кодун жазыңыз:"
        ),
        "certificates": "Ушул кароонун сертификаттары",
    },
    "tg": {
        "title": "Ёддошт барои соҳиб",
        "keep": "Инро нигоҳ доред. Ба корфармо ва ба касе нишон надиҳед.",
        "link": "Саҳифаи шахсии шумо: ҳамаи шаҳодатномаҳои шумо ва кӣ онҳоро санҷидааст",
        "code": "Рамзи барқарорсозӣ",
        "lost": (
            "Пайвандро гум кардед? Суроғаи зеринро кушоед ва рақами шаҳодатнома, санаи таваллуд "
            "ва рамзи барқарорсозиро ворид кунед:"
        ),
        "certificates": "Шаҳодатномаҳои ин муоина",
    },
    "uz": {
        "title": "Egasi uchun eslatma",
        "keep": "Buni saqlang. Ish beruvchiga ham, boshqa hech kimga ham koʻrsatmang.",
        "link": "Shaxsiy sahifangiz: barcha sertifikatlaringiz va ularni kim tekshirgani",
        "code": "Tiklash kodi",
        "lost": (
            "Havolani yoʻqotdingizmi? Quyidagi manzilni oching va sertifikat raqami, tugʻilgan "
            "sanangiz va tiklash kodini kiriting:"
        ),
        "certificates": "Ushbu koʻrikning sertifikatlari",
    },
}
