"""The memory commands, each against a server and embedded: what one command stores the
next one finds, tables for people and JSON for scripts."""

from __future__ import annotations

import json

from tests.cli.conftest import Ww


def test_store_then_recall_shows_the_memory(ww: Ww) -> None:
    stored = ww.json("store", "the deploy failed: the disk was full", "--speaker", "ops")
    assert stored["content"] == "the deploy failed: the disk was full"
    table = ww("recall", "why did the deploy fail?").stdout
    assert stored["id"] in table and "the deploy failed" in table
    found = ww.json("recall", "why did the deploy fail?", "--type", "episode")
    assert found["hits"][0]["id"] == stored["id"]
    assert found["recall_id"]


def test_store_reads_stdin_for_dash(ww: Ww) -> None:
    piped = "a note\nof two lines"
    stored = json.loads(ww("store", "-", "--json", stdin=piped).stdout)
    assert ww.json("episodes", "get", stored["id"])["content"] == piped


def test_list_get_delete_and_not_found(ww: Ww) -> None:
    ids = [ww.json("store", f"note {i}", "--speaker", "bot")["id"] for i in range(3)]
    ww.json("store", "from someone else", "--speaker", "user")
    page = ww.json("episodes", "list", "--where", "speaker=bot", "--limit", "2")
    assert len(page) == 2
    every = ww.json("episodes", "list", "--where", "speaker=bot", "--limit", "2", "--all")
    assert sorted(e["id"] for e in every) == sorted(ids)
    assert ww.json("episodes", "get", ids[0])["content"] == "note 0"
    assert ids[1] in ww("episodes", "get", ids[1]).stdout
    assert ww.json("episodes", "delete", ids[0]) == {"deleted": ids[0]}
    gone = ww("episodes", "get", ids[0], code=3)
    assert gone.stdout == ""
    assert "404 not_found" in gone.stderr and "request id" in gone.stderr


def test_a_filter_the_list_does_not_take_is_a_usage_error(ww: Ww) -> None:
    result = ww("episodes", "list", "--where", "colour=red", code=2)
    assert "speaker" in result.stderr and result.stdout == ""


def test_refused_input_exits_6_with_the_servers_message(ww: Ww) -> None:
    result = ww("store", "   ", code=6)
    assert "422" in result.stderr and "content" in result.stderr


def test_entities_relations_and_skills(ww: Ww) -> None:
    paris = ww.json("entities", "create", "Paris", "--type", "LOCATION", "--summary", "capital")
    france = ww.json("entities", "create", "France", "--type", "LOCATION")
    relation = ww.json("entities", "relate", paris["id"], france["id"], "--type", "PART_OF")
    listed = ww.json("entities", "relations", paris["id"])
    assert [r["id"] for r in listed["items"]] == [relation["id"]]
    assert "PART_OF" in ww("entities", "relations", paris["id"]).stdout
    ww("entities", "unrelate", paris["id"], relation["id"])
    assert ww.json("entities", "relations", paris["id"])["items"] == []
    names = {e["name"] for e in ww.json("entities", "list", "--where", "entity_type=LOCATION")}
    assert names == {"Paris", "France"}

    skill = ww.json(
        "skills",
        "create",
        "restart-web",
        "--task",
        "restart the crashed web service",
        "--step",
        "systemctl restart web",
        "--step",
        "curl the health check",
    )
    assert [s["action"] for s in skill["steps"]] == [
        "systemctl restart web",
        "curl the health check",
    ]
    assert ww.json("skills", "how-to", "the web service is down")["skill"]["id"] == skill["id"]
    ran = ww.json("skills", "execute", skill["id"], "--failure", "--duration-ms", "50")
    assert ran["skill"]["failures"] == 1
    assert ww.json("skills", "recall", "web service")["hits"][0]["skill"]["id"] == skill["id"]


def test_feedback_and_consolidate(ww: Ww) -> None:
    ww.json("store", "the backup job ran at midnight", "--outcome", "success")
    recall_id = ww.json("recall", "when does the backup run?")["recall_id"]
    answer = ww.json("feedback", recall_id, "--reward", "1")
    assert answer["recall_id"] == recall_id and answer["changes"]
    report = ww.json("consolidate", "--dry-run")
    assert report["dry_run"] is True and report["episodes_considered"] >= 1
    assert "episodes_considered" in ww("consolidate", "--dry-run").stdout
