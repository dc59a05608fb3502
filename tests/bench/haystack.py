"""A small haystack for the repeated-question tests of both benches."""

from __future__ import annotations

__all__ = ["GOLD_TEXT", "NEAR_MISSES", "QUESTION", "RAINY"]

QUESTION = "What is the name of my cat?"
GOLD_TEXT = "We adopted a grey kitten and named her Pixel."
RAINY = "The weather is rainy today."
# Turns that share the question's words: with the vendored model GOLD_TEXT ranks sixth on a
# first ask (NEAR_MISSES[:6], GOLD_TEXT, RAINY, NEAR_MISSES[6:]), close enough below the fifth
# for one round of feedback to lift it.
NEAR_MISSES = [
    "What name should I give my cat?",
    "I need a good name for my cat.",
    "Help me pick a name for my cat.",
    "The name of my cat's vet is Dr. Smith.",
    "My cat keeps scratching the sofa, what should I do?",
    "Can you suggest names for a cat?",
    "What do cats like to eat for dinner?",
    "Is it normal for a cat to sleep all day?",
    "How do I call my cat so that it comes to me?",
    "My friend's cat is called Whiskers.",
    "What is the best litter for a cat?",
    "Cats are called felines, right?",
]
