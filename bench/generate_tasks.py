"""Three small generation tasks of different kinds, built deterministically (no downloads).

* ``extract``: structured extraction to JSON. Sentences are templated from facts that belong to no one (which
  city is the capital of which country, on which continent); the answer is a one-line JSON object.
* ``dates``: a format conversion. A date written in one of six common English styles becomes ISO 8601.
* ``past``: a short rewrite. A present-tense sentence (subject, verb, object, place; irregular verbs included)
  is rewritten in the past tense.

Two more, kept out of the choice of graftwork's defaults (``bench/generate_sweep.py`` chooses on ``extract`` and
``dates`` and checks on these):

* ``numbers``: a format conversion the other way. A whole number from 1 to 9,999 written in British English
  words ("four thousand two hundred and seven") becomes digits.
* ``sort``: a list operation. Four to six common nouns become the same nouns in alphabetical order.

``write_task(name, folder, n_train, seed)`` writes train.jsonl, val.jsonl (16) and test.jsonl (64) as
prompt/completion rows; the test set is the same for every training size and seed.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

CAPITALS = [
    ("France", "Paris", "Europe"), ("Germany", "Berlin", "Europe"), ("Italy", "Rome", "Europe"),
    ("Spain", "Madrid", "Europe"), ("Portugal", "Lisbon", "Europe"), ("Norway", "Oslo", "Europe"),
    ("Sweden", "Stockholm", "Europe"), ("Finland", "Helsinki", "Europe"), ("Poland", "Warsaw", "Europe"),
    ("Austria", "Vienna", "Europe"), ("Greece", "Athens", "Europe"), ("Ireland", "Dublin", "Europe"),
    ("Hungary", "Budapest", "Europe"), ("Denmark", "Copenhagen", "Europe"), ("Belgium", "Brussels", "Europe"),
    ("Egypt", "Cairo", "Africa"), ("Kenya", "Nairobi", "Africa"), ("Nigeria", "Abuja", "Africa"),
    ("Ghana", "Accra", "Africa"), ("Morocco", "Rabat", "Africa"), ("Ethiopia", "Addis Ababa", "Africa"),
    ("Senegal", "Dakar", "Africa"), ("Tanzania", "Dodoma", "Africa"), ("Uganda", "Kampala", "Africa"),
    ("Japan", "Tokyo", "Asia"), ("China", "Beijing", "Asia"), ("India", "New Delhi", "Asia"),
    ("Thailand", "Bangkok", "Asia"), ("Vietnam", "Hanoi", "Asia"), ("Nepal", "Kathmandu", "Asia"),
    ("Mongolia", "Ulaanbaatar", "Asia"), ("Indonesia", "Jakarta", "Asia"), ("Iran", "Tehran", "Asia"),
    ("Canada", "Ottawa", "North America"), ("Mexico", "Mexico City", "North America"),
    ("Cuba", "Havana", "North America"), ("Jamaica", "Kingston", "North America"),
    ("Panama", "Panama City", "North America"), ("Brazil", "Brasilia", "South America"),
    ("Argentina", "Buenos Aires", "South America"), ("Chile", "Santiago", "South America"),
    ("Peru", "Lima", "South America"), ("Colombia", "Bogota", "South America"),
    ("Uruguay", "Montevideo", "South America"), ("Australia", "Canberra", "Oceania"),
    ("New Zealand", "Wellington", "Oceania"), ("Fiji", "Suva", "Oceania"), ("Samoa", "Apia", "Oceania"),
]
EXTRACT_TEMPLATES = [
    "{city} is the capital of {country}, a country in {continent}.",
    "The capital city of {country} is {city}.",
    "Travellers to {country} in {continent} often start their visit in {city}, the capital.",
    "{country}'s government sits in {city}.",
    "In {continent}, the country of {country} has {city} as its capital.",
    "She flew to {city}, the capital of {country}, last spring.",
    "Every year many students move to {city} to study in the capital of {country}.",
    "The river port of {city} became the seat of government of {country} long ago.",
    "A map of {continent} shows {country} with its capital, {city}, marked by a star.",
    "Our guidebook to {country} has a whole chapter on {city}, its capital.",
]
EXTRACT_INSTRUCTION = "Extract the country and its capital as JSON with keys \"country\" and \"capital\".\n"

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
DATE_STYLES = [
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{d.day:02d}/{d.month:02d}/{d.year} (day/month/year)",
    lambda d: f"the {d.day}{'th' if 10 <= d.day % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(d.day % 10, 'th')}"
              f" of {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day} {d.year}",
    lambda d: f"{d.year}, {MONTHS[d.month - 1]} {d.day}",
]
DATE_INSTRUCTION = "Write this date in ISO format (YYYY-MM-DD): "

SUBJECTS = [("I", "1s"), ("You", "2"), ("We", "p"), ("They", "p"), ("She", "3"), ("He", "3"), ("My sister", "3"),
            ("The children", "p"), ("Our neighbour", "3"), ("The teacher", "3")]
VERBS = [  # base, third person, past, object options
    ("eat", "eats", "ate", ["an apple", "some bread", "a sandwich"]),
    ("buy", "buys", "bought", ["a newspaper", "fresh fish", "two tickets"]),
    ("write", "writes", "wrote", ["a letter", "a short story", "the report"]),
    ("see", "sees", "saw", ["the mountains", "a film", "an old friend"]),
    ("take", "takes", "took", ["the bus", "a photograph", "the dog for a walk"]),
    ("find", "finds", "found", ["a coin", "the keys", "a quiet table"]),
    ("cook", "cooks", "cooked", ["dinner", "a big pot of soup", "rice"]),
    ("paint", "paints", "painted", ["the fence", "a picture", "the kitchen"]),
    ("carry", "carries", "carried", ["the boxes", "a heavy bag", "the shopping"]),
    ("watch", "watches", "watched", ["the birds", "the match", "the sunset"]),
    ("read", "reads", "read", ["a book", "the map", "the news"]),
    ("bring", "brings", "brought", ["flowers", "a cake", "the chairs"]),
]
PLACES = ["at home", "in the park", "at the market", "in the morning", "after work", "on Sundays", "by the river"]
PAST_INSTRUCTION = "Rewrite this sentence in the past tense: "


def _extract(rng: random.Random) -> dict[str, str]:
    country, city, continent = rng.choice(CAPITALS)
    sentence = rng.choice(EXTRACT_TEMPLATES).format(city=city, country=country, continent=continent)
    return {"prompt": EXTRACT_INSTRUCTION + sentence,
            "completion": json.dumps({"country": country, "capital": city})}


def _dates(rng: random.Random) -> dict[str, str]:
    d = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 80))
    return {"prompt": DATE_INSTRUCTION + rng.choice(DATE_STYLES)(d), "completion": d.isoformat()}


def _past(rng: random.Random) -> dict[str, str]:
    subject, person = rng.choice(SUBJECTS)
    base, third, past, objects = rng.choice(VERBS)
    obj, place = rng.choice(objects), rng.choice(PLACES)
    present = third if person == "3" else base
    return {"prompt": PAST_INSTRUCTION + f"{subject} {present} {obj} {place}.",
            "completion": f"{subject} {past} {obj} {place}."}


ONES = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
NUMBER_INSTRUCTION = "Write this number in digits: "
NOUNS = ["apple", "bridge", "candle", "desk", "engine", "forest", "garden", "harbour", "island", "jacket", "kettle",
         "ladder", "market", "needle", "orange", "pencil", "quarry", "river", "saddle", "ticket", "umbrella",
         "valley", "window", "yacht", "zebra", "basket", "castle", "dragon", "feather", "guitar", "hammer", "lemon",
         "mirror", "pillow", "rocket", "spoon", "tunnel", "violin", "wagon", "bottle"]
SORT_INSTRUCTION = "Sort these words alphabetically: "


def words(n: int) -> str:
    """1 <= n <= 9999 in British English words ("two hundred and five")."""
    parts = []
    if n >= 1000:
        parts.append(f"{ONES[n // 1000]} thousand")
        n %= 1000
    if n >= 100:
        parts.append(f"{ONES[n // 100]} hundred")
        n %= 100
    if n:
        small = ONES[n] if n < 20 else TENS[n // 10] + (f"-{ONES[n % 10]}" if n % 10 else "")
        parts.append(("and " if parts else "") + small)
    return " ".join(parts)


def _numbers(rng: random.Random) -> dict[str, str]:
    n = rng.choice([rng.randrange(1, 100), rng.randrange(100, 1000), rng.randrange(1000, 10000)])
    return {"prompt": NUMBER_INSTRUCTION + words(n), "completion": str(n)}


def _sort(rng: random.Random) -> dict[str, str]:
    chosen = rng.sample(NOUNS, rng.randrange(4, 7))
    return {"prompt": SORT_INSTRUCTION + ", ".join(chosen), "completion": ", ".join(sorted(chosen))}


TASKS = {"extract": _extract, "dates": _dates, "past": _past, "numbers": _numbers, "sort": _sort}
TEST_SIZE, VAL_SIZE = 64, 16


def build(name: str, n: int, seed: int, exclude: set[str] | None = None) -> list[dict[str, str]]:
    rng, rows, seen = random.Random(seed), [], set(exclude or ())
    while len(rows) < n:
        row = TASKS[name](rng)
        if row["prompt"] not in seen:
            seen.add(row["prompt"])
            rows.append(row)
    return rows


def write_task(name: str, folder: Path, n_train: int, seed: int = 0) -> Path:
    """train/val/test JSONL for task ``name``; test prompts never appear in train or val."""
    folder.mkdir(parents=True, exist_ok=True)
    test = build(name, TEST_SIZE, seed=10_000)
    held = {r["prompt"] for r in test}
    val = build(name, VAL_SIZE, seed=20_000 + seed, exclude=held)
    train = build(name, n_train, seed=seed, exclude=held | {r["prompt"] for r in val})
    for split, rows in (("train", train), ("val", val), ("test", test)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


if __name__ == "__main__":
    for task in TASKS:
        print(task, build(task, 2, 0))
