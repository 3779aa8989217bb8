"""One label vocabulary: ImageNet tags and COCO labels map to concepts in one hierarchy."""

from __future__ import annotations

from mediacommon import vocabulary as v
from mediacommon.imagenet import IMAGENET_LABELS


def test_breeds_and_coat_names_reach_their_animal():
    assert v.lineage("German shepherd") == ("dog", "mammal", "animal")
    assert v.lineage("sorrel") == ("horse", "mammal", "animal")
    assert v.lineage("bald eagle") == ("bird", "animal")
    assert v.lineage("tabby") == ("cat", "mammal", "animal")
    assert v.canonical("golden retriever") == v.canonical("dog") == v.canonical("Puppy") == "dog"


def test_detector_labels_and_synonyms_share_concepts():
    assert v.canonical("person") == v.canonical("people") == v.canonical("Pedestrian") == "person"
    assert v.canonical("mountain bike") == v.canonical("bike") == "bicycle"
    assert v.lineage("giraffe") == ("giraffe", "mammal", "animal")
    assert v.canonical("baseball_bat") == "baseball bat"
    assert {"knife", "scissors", "baseball bat"} == v.WEAPON_ADJACENT
    assert v.canonical("cleaver") == "knife"


def test_animal_expands_to_every_animal_concept_and_nothing_else():
    animals = v.expand("animal")
    assert {"dog", "horse", "giraffe", "bird", "zebra", "cat", "mammal", "animal"} <= animals
    assert not {"person", "car", "bicycle", "knife"} & animals
    assert v.expand("animals") == animals
    assert v.expand("dog") == {"dog"}
    raw = v.raw_labels_for("dog")
    assert {"german shepherd", "chihuahua", "puppy", "dog"} <= raw and "tabby" not in raw


def test_unknown_labels_are_their_own_concept():
    assert v.canonical("Abacus") == "abacus" and v.ancestors("abacus") == ()
    assert v.expand("spaceship") == {"spaceship"}


def test_the_hierarchy_has_no_cycles_and_every_imagenet_range_fits():
    for concept in v.PARENT:
        chain = v.ancestors(concept)
        assert concept not in chain and len(chain) < 6
    assert len(IMAGENET_LABELS) == 1000
    assert all(0 <= lo <= hi < 398 for lo, hi, _ in v._IMAGENET_RANGES)
    covered = [i for lo, hi, _ in v._IMAGENET_RANGES for i in range(lo, hi + 1)]
    assert sorted(covered) == list(range(398))  # every ImageNet animal class is placed once
    assert all(v.canonical(IMAGENET_LABELS[i], "imagenet") in v.expand("animal") for i in covered)


def test_imagenet_names_are_read_in_their_own_sense_when_the_source_says_so():
    assert v.canonical("kite", "imagenet") == "bird"  # ImageNet's kite is a bird of prey
    assert v.canonical("kite") == "kite"  # the COCO class is the toy
    assert v.canonical("Cardigan", "imagenet") == "dog" and v.canonical("cardigan", "imagenet") == "cardigan"
