"""Pre-rendered JSON fragments (authors, music, descriptions, hashtag lists) the sandbox picks from.

Rendering a record by picking ready-made, already JSON-escaped fragments is what makes the sandbox
fast enough: a record costs two integer hashes and one ``%`` format, never a ``json.dumps``.
Pools are built once per (seed, extra_fields) or per hashtag and cached.
"""

from __future__ import annotations

import json
import random
from functools import lru_cache

AUTHOR_POOL = 2048
MUSIC_POOL = 512
DESCRIPTION_POOL = 256
HASHTAG_LIST_POOL = 16

_SYLLABLES = (
    "ka",
    "mi",
    "lo",
    "ra",
    "ne",
    "zu",
    "ti",
    "po",
    "sa",
    "vi",
    "de",
    "jo",
    "lu",
    "ma",
    "ri",
    "xo",
    "be",
    "no",
    "ha",
    "ki",
    "yu",
    "fe",
    "go",
    "la",
)
_FIRST_NAMES = (
    "Ana",
    "Ben",
    "Chloé",
    "Dmitri",
    "Emma",
    "Fatima",
    "Gustavo",
    "Hana",
    "Ivan",
    "Jade",
    "Kenji",
    "Léa",
    "Mateo",
    "Nour",
    "Olivia",
    "Priya",
    "Quentin",
    "Rosa",
    "Søren",
    "Tomás",
    "Uma",
    "Vikram",
    "Wen",
    "Yara",
    "Zoë",
    "美咲",
    "지민",
    "Ömer",
)
_DISPLAY_SUFFIXES = ("", "", "", " ✨", " 🐾", " | creator", " 🇧🇷", " 🌸", " (official)", " 💫")
_VERBS = (
    "Morning routine with",
    "Trying",
    "POV: you finally meet",
    "Day 37 of filming",
    "Rating",
    "Quick recipe:",
    "Can't stop watching",
    "Storytime about",
    "Behind the scenes of",
    "Unboxing",
    "Reacting to",
    "Tutorial:",
    "Wait for the end —",
    "When your friend says",
)
_OBJECTS = (
    "my cat",
    "the new café downtown",
    "a 5-minute pasta",
    "this sunset in Lisbon",
    "grandma's dog",
    "the tallest slide in Tokyo 東京",
    "our first apartment",
    "a vintage camera",
    "street food in Seoul",
    "a très chic outfit",
    'the "impossible" puzzle',
    "my naïve plant collection",
    "a rainy day",
    "100 rubber ducks",
    "the gym at 5am",
    "a tiny kitten",
)
_EMOJI = ("🔥", "😂", "✨", "🐱", "❤️", "👀", "🙌", "🌊", "🍜", "💯", "🎶", "🤯", "")
_TRAILERS = ("", "", " link in bio", " (part 2)", " #fyp", " — thoughts?", "\nfollow for more", " \\o/")
_COMMON_TAGS = ("fyp", "foryou", "viral", "trending", "foryoupage", "tiktok", "duet", "xyzbca", "funny")
_SONGS = (
    "Midnight Drive",
    "Lemonade Skies",
    "Tokyo Rain",
    "Golden Hour",
    "Bailando Sola",
    "Paper Planes",
    "Neon Hearts",
    "Slow Motion",
    "Café au Lait",
    "Summer '99",
    "Moonlight Sonata (remix)",
    "Ritmo",
)
_ARTISTS = (
    "Luna Park",
    "DJ Koi",
    "The Velvet Owls",
    "Marina Sol",
    "Kōji",
    "BLKBRD",
    "Ana Lía",
    "Sunset Club",
    "Hex & Wren",
    "Orquesta Nova",
)
_REGIONS = (
    "US",
    "US",
    "US",
    "GB",
    "DE",
    "FR",
    "BR",
    "BR",
    "JP",
    "KR",
    "ID",
    "ID",
    "MX",
    "IN",
    "ES",
    "IT",
    "CA",
    "AU",
    "TR",
    "VN",
    "PH",
    "TH",
    "PL",
    "NL",
)


def _dump(value: object) -> bytes:
    # ensure_ascii=False: real APIs send raw UTF-8, and clients must cope with it. Fragments are
    # bytes because formatting bytes is ~2x faster than formatting non-ASCII str and saves an encode.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _username(rng: random.Random) -> str:
    base = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
    tail = rng.choice(("", "_", ".", "__")) + (str(rng.randint(1, 9999)) if rng.random() < 0.6 else "")
    return (base + tail).rstrip("._") or base


@lru_cache(maxsize=16)
def author_pool(seed: int, extra_fields: bool) -> tuple[tuple[bytes, bytes], ...]:
    """Return ``(username, author_json)`` pairs; usernames also go into ``share_url``.

    One author in 16 carries an unknown field (``x_follower_count``) when ``extra_fields`` is on,
    so clients are tested for keeping unknown fields inside nested objects too.
    """
    rng = random.Random(f"authors:{seed}")
    out = []
    for i in range(AUTHOR_POOL):
        username = _username(rng)
        author: dict[str, object] = {
            "id": str(rng.randint(6_700_000_000_000_000_000, 7_499_999_999_999_999_999)),
            "username": username,
            "display_name": rng.choice(_FIRST_NAMES) + rng.choice(_DISPLAY_SUFFIXES),
            "avatar_url": f"https://p16-sign-va.tiktokcdn.com/tos-maliva-avt-0068/{rng.getrandbits(64):016x}"
            "~c5_100x100.jpeg",
        }
        if extra_fields and i % 16 == 0:
            author["x_follower_count"] = int(10 ** rng.uniform(1, 7.5))
        out.append((username.encode("utf-8"), _dump(author)))
    return tuple(out)


@lru_cache(maxsize=16)
def music_pool(seed: int) -> tuple[bytes, ...]:
    """Return JSON fragments (bytes) of ``Music`` objects (original sounds and licensed tracks)."""
    rng = random.Random(f"music:{seed}")
    out = []
    for _ in range(MUSIC_POOL):
        original = rng.random() < 0.4
        if original:
            owner = _username(rng)
            music = {
                "id": str(rng.randint(10**18, 10**19 - 1)),
                "title": f"original sound - {owner}",
                "author": owner,
                "is_original": True,
            }
        else:
            music = {
                "id": str(rng.randint(10**18, 10**19 - 1)),
                "title": rng.choice(_SONGS),
                "author": rng.choice(_ARTISTS),
                "is_original": False,
            }
        out.append(_dump(music))
    return tuple(out)


def region_pool() -> tuple[bytes, ...]:
    """Return JSON string literals of region codes (weighted by repetition)."""
    return tuple(_dump(r) for r in _REGIONS)


@lru_cache(maxsize=256)
def description_pool(seed: int, name: str) -> tuple[bytes, ...]:
    """Return JSON string literals of video descriptions mentioning ``#name`` (unicode, emoji, quotes)."""
    rng = random.Random(f"descriptions:{seed}:{name}")
    out = []
    for _ in range(DESCRIPTION_POOL):
        text = f"{rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_EMOJI)}".rstrip()
        tags = " ".join(f"#{t}" for t in rng.sample(_COMMON_TAGS, rng.randint(0, 2)))
        text = f"{text} #{name} {tags}".rstrip() + rng.choice(_TRAILERS)
        out.append(_dump(text))
    return tuple(out)


@lru_cache(maxsize=256)
def hashtag_list_pool(seed: int, name: str) -> tuple[bytes, ...]:
    """Return JSON arrays of hashtag names; the hashtag itself always comes first."""
    rng = random.Random(f"taglists:{seed}:{name}")
    out = []
    for _ in range(HASHTAG_LIST_POOL):
        extra = [t for t in rng.sample(_COMMON_TAGS, rng.randint(0, 3)) if t != name]
        out.append(_dump([name, *extra]))
    return tuple(out)
