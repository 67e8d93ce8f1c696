"""The cities of the demo: districts and the streets their lampposts stand along.

Street lines are approximate centre lines of real streets (longitude,
latitude, WGS 84), traced by hand from public maps to within some tens of
metres: close enough for a map and for geo-queries by district, not for
navigation.  Hong Kong's four districts are those of the smart lampposts
pilot; Shanghai's are four central ones, for the Hong Kong/Shanghai open data
challenge.
"""

from __future__ import annotations

from dataclasses import dataclass

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Street:
    name: str
    line: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class District:
    code: str
    name: str
    streets: tuple[Street, ...]


@dataclass(frozen=True, slots=True)
class City:
    code: str  # in entity ids: urn:ngsi-ld:Streetlight:hk:...
    name: str
    country: str  # ISO 3166-1 alpha-2, or HK
    utc_offset: int  # hours; the daily curves follow local time
    publisher: str
    #: mean air temperature in the coldest and the warmest month (°C)
    temperature_range: tuple[float, float]
    districts: tuple[District, ...]


def _street(name: str, *points: Point) -> Street:
    return Street(name, points)


HONG_KONG = City(
    code="hk",
    name="Hong Kong",
    country="HK",
    utc_offset=8,
    publisher="Hong Kong smart lampposts pilot (demo data)",
    temperature_range=(16.3, 29.0),
    districts=(
        District("central", "Central and Admiralty", (
            _street("Des Voeux Road Central", (114.1508, 22.2866), (114.1545, 22.2849),
                    (114.1580, 22.2826), (114.1612, 22.2806)),
            _street("Connaught Road Central", (114.1520, 22.2880), (114.1563, 22.2866),
                    (114.1601, 22.2845)),
            _street("Queensway", (114.1622, 22.2794), (114.1652, 22.2785),
                    (114.1683, 22.2778)),
            _street("Harcourt Road", (114.1625, 22.2813), (114.1668, 22.2808),
                    (114.1712, 22.2801)),
        )),
        District("wanchai-causewaybay", "Causeway Bay and Wan Chai", (
            _street("Hennessy Road", (114.1690, 22.2780), (114.1735, 22.2776),
                    (114.1785, 22.2785), (114.1830, 22.2800)),
            _street("Lockhart Road", (114.1705, 22.2790), (114.1760, 22.2794),
                    (114.1818, 22.2805)),
            _street("Gloucester Road", (114.1725, 22.2812), (114.1790, 22.2818),
                    (114.1850, 22.2816)),
            _street("Yee Wo Street", (114.1836, 22.2800), (114.1870, 22.2803),
                    (114.1903, 22.2810)),
        )),
        District("tsimshatsui", "Tsim Sha Tsui", (
            _street("Nathan Road", (114.1722, 22.2952), (114.1717, 22.2990),
                    (114.1712, 22.3035), (114.1708, 22.3080)),
            _street("Salisbury Road", (114.1686, 22.2940), (114.1720, 22.2947),
                    (114.1760, 22.2960)),
            _street("Chatham Road South", (114.1762, 22.2980), (114.1780, 22.3010),
                    (114.1801, 22.3042)),
            _street("Canton Road", (114.1688, 22.2962), (114.1691, 22.3000),
                    (114.1693, 22.3040)),
        )),
        District("kwuntong-kaitak", "Kwun Tong and Kai Tak", (
            _street("Kwun Tong Road", (114.2090, 22.3232), (114.2150, 22.3190),
                    (114.2210, 22.3140), (114.2265, 22.3105)),
            _street("Hoi Bun Road", (114.2168, 22.3102), (114.2215, 22.3090),
                    (114.2260, 22.3080)),
            _street("Shing Kai Road", (114.1992, 22.3282), (114.2020, 22.3245),
                    (114.2052, 22.3203)),
            _street("How Ming Street", (114.2195, 22.3118), (114.2230, 22.3128),
                    (114.2250, 22.3142)),
        )),
    ),
)

SHANGHAI = City(
    code="sh",
    name="Shanghai",
    country="CN",
    utc_offset=8,
    publisher="Shanghai open data challenge (demo data)",
    temperature_range=(4.8, 28.9),
    districts=(
        District("bund", "The Bund (Huangpu)", (
            _street("Zhongshan East 1st Road", (121.4905, 31.2330), (121.4898, 31.2380),
                    (121.4885, 31.2430), (121.4875, 31.2455)),
            _street("Nanjing Road East", (121.4868, 31.2395), (121.4820, 31.2383),
                    (121.4765, 31.2362)),
        )),
        District("jingan", "Jing'an", (
            _street("Nanjing Road West", (121.4700, 31.2338), (121.4620, 31.2305),
                    (121.4540, 31.2270), (121.4480, 31.2242)),
            _street("Yan'an Road Elevated", (121.4690, 31.2250), (121.4590, 31.2225),
                    (121.4500, 31.2200)),
        )),
        District("lujiazui", "Lujiazui (Pudong)", (
            _street("Century Avenue", (121.5025, 31.2392), (121.5110, 31.2350),
                    (121.5195, 31.2312), (121.5280, 31.2278)),
            _street("Lujiazui Ring Road", (121.4990, 31.2412), (121.5030, 31.2385),
                    (121.5062, 31.2360)),
        )),
        District("xuhui", "Xuhui", (
            _street("Huaihai Middle Road", (121.4700, 31.2200), (121.4610, 31.2165),
                    (121.4520, 31.2128), (121.4450, 31.2110)),
            _street("Hengshan Road", (121.4482, 31.2128), (121.4430, 31.2080),
                    (121.4380, 31.2032)),
        )),
    ),
)

CITIES = {"hong-kong": HONG_KONG, "shanghai": SHANGHAI}
