"""The content store: validation, update-not-duplicate, the bound, lookup and paging."""

from __future__ import annotations

from typing import Any

import pytest

from rpcsvc.content import ContentStore, validate_post
from rpcsvc.errors import ContentNotFound, ContentStoreFull, InvalidParams


def post(native_id: str, **fields: Any) -> dict[str, Any]:
    return {"platform": "reddit", "id": native_id, "text": f"text {native_id}", **fields}


def test_upload_defaults_fill_a_complete_post() -> None:
    assert validate_post({"id": 7, "text": "hello", "author": "ann"}, field="posts[0]") == {
        "content_id": "upload:7",
        "platform": "upload",
        "id": "7",
        "author": {"id": None, "handle": "ann", "name": None},
        "text": "hello",
        "created_at": None,
        "reply_to": None,
        "mentions": [],
        "hashtags": [],
        "urls": [],
        "metrics": {"replies": None, "reposts": None, "likes": None},
        "lang": None,
        "url": None,
    }
    implied = validate_post(
        {"content_id": "bluesky:at://x/1", "text": "t", "created_at": "2022-11-08T10:00:00+02:00",
         "hashtags": ["#vote"], "raw": {"any": ["thing"]}},
        field="p",
    )  # fmt: skip
    assert (implied["platform"], implied["id"], implied["created_at"]) == (
        "bluesky", "at://x/1", "2022-11-08T08:00:00Z",
    )  # fmt: skip
    assert implied["hashtags"] == ["vote"] and implied["raw"] == {"any": ["thing"]}


@pytest.mark.parametrize(
    ("bad", "field", "problem"),
    [
        ("not a post", "posts[3]", "must be an object (a post)"),
        ({"id": "1"}, "posts[3].text", "is required"),
        ({"id": "1", "text": 5}, "posts[3].text", "must be a string"),
        ({"text": "t"}, "posts[3].id", "is required when content_id is missing"),
        ({"id": "1", "text": "t", "colour": "red"}, "posts[3].colour", "unknown field"),
        ({"content_id": "nocolon", "text": "t"}, "posts[3].content_id", "must look like"),
        ({"content_id": "a:1", "platform": "b", "text": "t"}, "posts[3].content_id", "starts with"),
        ({"content_id": "a:1", "id": "2", "text": "t"}, "posts[3].content_id", "ends with"),
        ({"id": "1", "text": "t", "platform": "Bad Name"}, "posts[3].platform", "must be 1-32"),
        ({"id": "1", "text": "t", "created_at": "yesterday"}, "posts[3].created_at", "ISO 8601"),
        ({"id": "1", "text": "t", "author": {"nick": "x"}}, "posts[3].author.nick", "unknown"),
        ({"id": "1", "text": "t", "mentions": ["a", 2]}, "posts[3].mentions[1]", "must be a"),
        ({"id": "1", "text": "t", "metrics": {"likes": "9"}}, "posts[3].metrics.likes", "integer"),
        ({"id": "1", "text": "t", "reply_to": {"author": "x"}}, "posts[3].reply_to.post", "must"),
    ],
)
def test_bad_posts_are_refused_naming_the_field(bad: Any, field: str, problem: str) -> None:
    store = ContentStore()
    batch = [post("a"), post("b"), post("c"), bad]
    with pytest.raises(InvalidParams) as caught:
        store.add(batch)
    assert caught.value.field == field
    assert problem in caught.value.problem
    assert len(store) == 0  # nothing from a refused batch is kept


def test_adding_the_same_post_again_updates_it_in_place() -> None:
    store = ContentStore()
    assert store.add([post("a"), post("b")]) == {
        "added": 2, "updated": 0, "content_ids": ["reddit:a", "reddit:b"],
    }  # fmt: skip
    outcome = store.add([post("b", text="edited"), post("c"), post("c", text="twice")])
    assert outcome == {
        "added": 1, "updated": 2, "content_ids": ["reddit:b", "reddit:c", "reddit:c"],
    }  # fmt: skip
    assert len(store) == 3
    assert [p["text"] for p in store.get(["reddit:c", "reddit:b"])] == ["twice", "edited"]
    # The update kept b's place in the listing order.
    assert [p["id"] for p in store.list()["posts"]] == ["a", "b", "c"]


def test_a_full_store_refuses_the_whole_batch() -> None:
    store = ContentStore(max_posts=3)
    store.add([post("a"), post("b")])
    with pytest.raises(ContentStoreFull) as caught:
        store.add([post("a", text="update"), post("c"), post("d")])
    assert caught.value.data == {"max_posts": 3, "count": 2, "adding": 2}
    assert len(store) == 2 and store.get(["reddit:a"])[0]["text"] == "text a"
    # Updates and one new post still fit.
    assert store.add([post("a", text="update"), post("c")])["added"] == 1
    assert repr(store) == "<ContentStore 3/3 posts (reddit=3)>"


def test_get_lists_every_missing_id() -> None:
    store = ContentStore()
    store.add([post("a")])
    with pytest.raises(ContentNotFound) as caught:
        store.get(["reddit:a", "reddit:zz", "x:1"])
    assert caught.value.data == {"missing": ["reddit:zz", "x:1"], "missing_count": 2}
    with pytest.raises(InvalidParams, match="content_ids"):
        store.get("reddit:a")


def test_list_pages_with_a_stable_cursor_and_filters() -> None:
    store = ContentStore()
    store.add(
        [
            post(str(i), author={"id": f"t2_{i % 3}", "handle": f"User{i % 3}", "name": None},
                 created_at=1667865600 + 60 * i)
            for i in range(10)
        ]
        + [{"id": "u1", "text": "uploaded", "author": "user1"}]
    )  # fmt: skip
    # Given pages of 4 over everything
    first = store.list(limit=4)
    assert [p["id"] for p in first["posts"]] == ["0", "1", "2", "3"]
    # When posts are added between pages, then they come at the end: nothing is skipped.
    store.add([post("late")])
    second = store.list(limit=4, cursor=first["next_cursor"])
    third = store.list(limit=4, cursor=second["next_cursor"])
    assert [p["id"] for p in second["posts"] + third["posts"]] == [
        "4", "5", "6", "7", "8", "9", "u1", "late",
    ]  # fmt: skip
    assert third["next_cursor"] is None

    by_author = store.list(author="user1", limit=2)
    assert [p["id"] for p in by_author["posts"]] == ["1", "4"]
    rest = store.list(author="user1", limit=2, cursor=by_author["next_cursor"])
    assert [p["id"] for p in rest["posts"]] == ["7", "u1"] and rest["next_cursor"] is None
    assert [p["id"] for p in store.list(author="t2_2")["posts"]] == ["2", "5", "8"]
    assert [p["id"] for p in store.list(platform="upload")["posts"]] == ["u1"]
    since = store.list(platform="reddit", since="2022-11-08T00:07:00Z")
    assert [p["id"] for p in since["posts"]] == ["7", "8", "9"]
    assert store.count() == 12 and store.count(platform="reddit") == 11


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": True}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": "999"}, "cursor"),
        ({"since": "last week"}, "since"),
        ({"platform": 3}, "platform"),
    ],
)
def test_list_refuses_bad_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        ContentStore().list(**kwargs)
    assert caught.value.field == field


def test_an_update_that_changes_the_author_moves_the_post() -> None:
    store = ContentStore()
    store.add([{"id": "1", "text": "t", "author": "ann"}])
    store.add([{"id": "1", "text": "t", "author": "bob"}])
    assert store.list(author="ann")["posts"] == []
    assert [p["author"]["handle"] for p in store.list(author="BOB")["posts"]] == ["bob"]
