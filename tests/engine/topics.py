"""Three obvious topics of six episodes each, for the consolidation tests."""

from __future__ import annotations

TOPICS: dict[str, list[str]] = {
    "baking": [
        "I baked sourdough bread with a long overnight fermentation",
        "The sourdough starter needs feeding with flour and water every day",
        "My bread crust came out crisp after baking in a hot dutch oven",
        "Kneading the bread dough develops gluten before the sourdough proof",
        "We tried a rye sourdough loaf and the bread crumb was dense",
        "Shaping the sourdough boule before the final bread proof in a basket",
    ],
    "astronomy": [
        "Through the telescope we watched the rings of Saturn tonight",
        "The Andromeda galaxy is visible with a small telescope under dark skies",
        "We photographed the Orion nebula with the new telescope camera",
        "Jupiter's moons lined up beside the planet in the telescope eyepiece",
        "A meteor shower lit up the night sky while the telescope cooled",
        "Aligning the telescope mount on Polaris before observing galaxies",
    ],
    "kubernetes": [
        "The kubernetes deployment rolled out three new pods in the cluster",
        "A kubernetes pod crashed with an out of memory error in production",
        "We scaled the kubernetes cluster nodes up for the traffic spike",
        "Helm upgraded the kubernetes ingress controller in the staging cluster",
        "The kubernetes liveness probe restarted the failing pod twice",
        "Kubectl showed the kubernetes service had no ready endpoints in the cluster",
    ],
}
