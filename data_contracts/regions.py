"""The wellbeing services counties whose data sote-risk reads: each region's municipalities.

Eksote (South Karelia) is the region the models are built for and the default everywhere; the
others exist for external validation (a model trained in one region scored on another's data,
`sote-risk evaluate --external`). A dataset says which region it comes from in dataset.json
(`region`; absent = Eksote, as every dataset written before regions existed), and the customers
contract checks municipalities against that region's list.

The feature pipeline keeps Eksote's municipalities as the model's categories: a customer from a
municipality outside them has municipality "not known", as a model moved to another region sees
it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    name: str  # the id used on the command line and in dataset.json
    title: str  # how people name it
    municipalities: tuple[str, ...]


DEFAULT_REGION = "eksote"

REGIONS: dict[str, Region] = {
    region.name: region
    for region in (
        Region("eksote", "Eksote (South Karelia wellbeing services county)",
               ("Lappeenranta", "Imatra", "Lemi", "Luumäki", "Parikkala", "Rautjärvi", "Ruokolahti", "Savitaipale",
                "Taipalsaari")),
        Region("vantaa-kerava", "Vantaa and Kerava wellbeing services county", ("Vantaa", "Kerava")),
        Region("kainuu", "Kainuu wellbeing services county",
               ("Kajaani", "Sotkamo", "Kuhmo", "Suomussalmi", "Paltamo", "Puolanka", "Hyrynsalmi", "Ristijärvi")),
    )
}


class UnknownRegionError(ValueError):
    """A region name that is not in REGIONS."""


def region(name: str | None) -> Region:
    """The region of that name (None = Eksote); an unknown name names the ones there are."""
    key = DEFAULT_REGION if name is None else str(name)
    try:
        return REGIONS[key]
    except KeyError:
        raise UnknownRegionError(f"unknown region {key!r}; known regions: {', '.join(REGIONS)}") from None
