"""Kodi NFO parsing from real files: fields, several episodes, URL-only, bombs, broken files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revenge.modules.library.nfo import MAX_NFO_BYTES, Actor, NfoResult, Rating, parse_nfo, read_nfo

MOVIE_NFO = """<?xml version="1.0" encoding="UTF-8" standalone="yes" ?>
<!-- written by Kodi -->
<movie>
    <title>The Matrix</title>
    <originaltitle>The Matrix</originaltitle>
    <sorttitle>Matrix 1</sorttitle>
    <ratings>
        <rating name="imdb" max="10" default="true">
            <value>8.7</value>
            <votes>2,031,000</votes>
        </rating>
        <rating name="themoviedb" max="10">
            <value>8.2</value>
            <votes>24000</votes>
        </rating>
    </ratings>
    <userrating>9</userrating>
    <outline>A hacker learns the truth.</outline>
    <plot>Thomas Anderson learns that reality
is a simulation &amp; joins the rebellion.</plot>
    <tagline>Welcome to the Real World.</tagline>
    <runtime>136</runtime>
    <thumb aspect="poster">https://image.example/poster.jpg</thumb>
    <mpaa>Rated R</mpaa>
    <certification>US:R</certification>
    <uniqueid type="imdb" default="true">tt0133093</uniqueid>
    <uniqueid type="tmdb">603</uniqueid>
    <genre>Action</genre>
    <genre>Science Fiction</genre>
    <country>United States of America</country>
    <set>
        <name>The Matrix Collection</name>
        <overview>The trilogy.</overview>
    </set>
    <tag>cyberpunk</tag>
    <tag>dystopia</tag>
    <credits>Lilly Wachowski</credits>
    <credits>Lana Wachowski</credits>
    <director>Lana Wachowski</director>
    <director>Lilly Wachowski</director>
    <premiered>1999-03-30</premiered>
    <year>1999</year>
    <studio>Village Roadshow Pictures</studio>
    <studio>Warner Bros. Pictures</studio>
    <actor>
        <name>Keanu Reeves</name>
        <role>Neo</role>
        <order>0</order>
        <thumb>https://image.example/keanu.jpg</thumb>
    </actor>
    <actor>
        <name>Laurence Fishburne</name>
        <role>Morpheus</role>
        <order>1</order>
    </actor>
    <fileinfo><streamdetails><video><codec>h264</codec></video></streamdetails></fileinfo>
</movie>
"""


def _write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_kodi_movie_nfo(tmp_path: Path) -> None:
    result = read_nfo(_write(tmp_path, "movie.nfo", MOVIE_NFO))
    assert result.ok and result.ids == ()
    (movie,) = result.items
    assert movie.kind == "movie"
    assert (movie.title, movie.original_title, movie.sort_title) == (
        "The Matrix",
        "The Matrix",
        "Matrix 1",
    )
    assert (movie.year, movie.premiered, movie.runtime) == (1999, date(1999, 3, 30), 136)
    assert (
        movie.plot == "Thomas Anderson learns that reality\nis a simulation & joins the rebellion."
    )
    assert movie.outline == "A hacker learns the truth."
    assert movie.tagline == "Welcome to the Real World."
    assert (movie.mpaa, movie.certification) == ("Rated R", "US:R")
    assert movie.genres == ("Action", "Science Fiction")
    assert movie.studios == ("Village Roadshow Pictures", "Warner Bros. Pictures")
    assert movie.tags == ("cyberpunk", "dystopia")
    assert movie.countries == ("United States of America",)
    assert movie.directors == ("Lana Wachowski", "Lilly Wachowski")
    assert movie.writers == ("Lilly Wachowski", "Lana Wachowski")
    assert movie.set_name == "The Matrix Collection"
    assert movie.actors == (
        Actor("Keanu Reeves", "Neo", 0, "https://image.example/keanu.jpg"),
        Actor("Laurence Fishburne", "Morpheus", 1, None),
    )
    assert movie.ratings == (
        Rating("imdb", 8.7, 2031000, 10.0, True),
        Rating("themoviedb", 8.2, 24000, 10.0, False),
    )
    assert movie.user_rating == 9.0
    assert movie.ids == (("imdb", "tt0133093"), ("tmdb", "603"))
    assert movie.default_id == "imdb"
    assert movie.id("tmdb") == "603"
    assert movie.lockdata is False


def test_tvshow_nfo_jellyfin_style(tmp_path: Path) -> None:
    nfo = """<?xml version="1.0" encoding="utf-8" standalone="yes"?>
<tvshow>
  <plot><![CDATA[A chemistry teacher <b>turns</b> to crime.]]></plot>
  <lockdata>true</lockdata>
  <lockedfields>Name|Overview</lockedfields>
  <title>Breaking Bad</title>
  <year>2008</year>
  <premiered>2008-01-20</premiered>
  <genre>Drama / Crime</genre>
  <studio>AMC</studio>
  <uniqueid type="tvdb" default="true">81189</uniqueid>
  <uniqueid type="Tmdb">1396</uniqueid>
  <imdb_id>tt0903747</imdb_id>
  <rating>9.5</rating>
  <votes>1500</votes>
  <actor><name>Bryan Cranston</name><role>Walter White</role><type>Actor</type><order>0</order></actor>
</tvshow>"""
    (show,) = read_nfo(_write(tmp_path, "tvshow.nfo", nfo)).items
    assert show.kind == "tvshow"
    assert show.title == "Breaking Bad"
    assert show.plot == "A chemistry teacher <b>turns</b> to crime."
    assert show.lockdata is True
    assert show.locked_fields == ("Name", "Overview")
    assert show.genres == ("Drama", "Crime")
    assert show.ids == (("imdb", "tt0903747"), ("tmdb", "1396"), ("tvdb", "81189"))
    assert show.default_id == "tvdb"
    assert show.ratings == (Rating("default", 9.5, 1500, 10.0, True),)
    assert show.actors == (Actor("Bryan Cranston", "Walter White", 0, None),)


def test_several_episodes_in_one_file(tmp_path: Path) -> None:
    nfo = """<?xml version="1.0" encoding="UTF-8"?>
<episodedetails>
  <title>Pilot (1)</title><showtitle>Lost</showtitle><season>1</season><episode>1</episode>
  <aired>2004-09-22</aired><uniqueid type="tvdb" default="true">127131</uniqueid>
</episodedetails>
<episodedetails>
  <title>Pilot (2)</title><showtitle>Lost</showtitle><season>1</season><episode>2</episode>
  <displayseason>1</displayseason><displayepisode>2</displayepisode>
  <aired>2004-09-29</aired><id>127132</id>
</episodedetails>
"""
    result = read_nfo(_write(tmp_path, "Lost - S01E01-E02.nfo", nfo))
    assert result.ok
    first, second = result.items
    assert (first.kind, first.title, first.season, first.episode) == ("episode", "Pilot (1)", 1, 1)
    assert (first.premiered, first.year, first.show_title) == (date(2004, 9, 22), 2004, "Lost")
    assert first.ids == (("tvdb", "127131"),)
    assert (second.title, second.episode, second.display_episode) == ("Pilot (2)", 2, 2)
    assert second.ids == (("tvdb", "127132"),)  # Kodi's legacy <id> of an episode is TheTVDB's


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("https://www.imdb.com/title/tt0133093/\n", (("imdb", "tt0133093"),)),
        ("http://www.imdb.com/de/title/tt0133093/?ref_=fn_al_tt_1", (("imdb", "tt0133093"),)),
        ("https://www.themoviedb.org/movie/603-the-matrix", (("tmdb", "603"),)),
        ("https://www.themoviedb.org/tv/1396", (("tmdb", "1396"),)),
        ("https://thetvdb.com/?tab=series&id=81189", (("tvdb", "81189"),)),
        ("https://thetvdb.com/dereferrer/series/81189", (("tvdb", "81189"),)),
        ("tt0133093", (("imdb", "tt0133093"),)),
    ],
)
def test_url_only_nfo(tmp_path: Path, text: str, ids: tuple[tuple[str, str], ...]) -> None:
    result = read_nfo(_write(tmp_path, "movie.nfo", text))
    assert result == NfoResult(ids=ids)


def test_xml_followed_by_url(tmp_path: Path) -> None:
    nfo = "<movie><title>My Cut</title></movie>\nhttps://www.imdb.com/title/tt0133093/\n"
    result = read_nfo(_write(tmp_path, "movie.nfo", nfo))
    assert result.ok
    assert result.items[0].title == "My Cut"
    assert result.ids == (("imdb", "tt0133093"),)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE movie [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<movie><title>&lol9;</title></movie>"""


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (BILLION_LAUGHS, "entity declaration refused: 'lol'"),
        (
            '<?xml version="1.0"?><!DOCTYPE movie [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            "<movie><title>&xxe;</title></movie>",
            "external entity refused: 'xxe' points at 'file:///etc/passwd'",
        ),
        (
            '<!DOCTYPE movie [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>'
            "<movie/>",
            "external entity refused: 'remote' points at 'http://127.0.0.1:9/evil.dtd'",
        ),
    ],
)
def test_entity_bombs_and_external_entities_are_refused(
    tmp_path: Path, doc: str, reason: str
) -> None:
    result = read_nfo(_write(tmp_path, "movie.nfo", doc))
    assert not result.ok
    assert result.items == ()
    assert result.error is not None and result.error.startswith(reason), result.error


def test_harmless_doctype_is_dropped(tmp_path: Path) -> None:
    nfo = '<?xml version="1.0"?>\n<!DOCTYPE movie>\n<movie><title>Fine</title></movie>'
    assert read_nfo(_write(tmp_path, "movie.nfo", nfo)).items[0].title == "Fine"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<movie><title>Cut off", "malformed XML: the file ends inside an element"),
        (b"<movie><title>A</movie>", "malformed XML: mismatched tag at line 1, column 17"),
        (b"<foo><bar/></foo>", "no Kodi NFO element"),
        (b"just some notes about this film", "neither XML nor a provider URL"),
        (b"", "neither XML nor a provider URL"),
        (b"<" * (MAX_NFO_BYTES + 1), "too large"),
    ],
)
def test_broken_nfo_reports_reason(tmp_path: Path, data: bytes, reason: str) -> None:
    result = read_nfo(_write(tmp_path, "movie.nfo", data))
    assert result.error is not None and result.error.startswith(reason), result.error
    assert result.items == ()


def test_unreadable_file(tmp_path: Path) -> None:
    result = read_nfo(tmp_path / "absent.nfo")
    assert result.error == "unreadable: No such file or directory"


def test_encodings(tmp_path: Path) -> None:
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><movie><title>Amélie</title></movie>'
    assert read_nfo(_write(tmp_path, "a.nfo", latin.encode("latin-1"))).items[0].title == "Amélie"
    no_decl = "<movie><title>Amélie</title></movie>".encode("cp1252")
    assert read_nfo(_write(tmp_path, "b.nfo", no_decl)).items[0].title == "Amélie"
    bom16 = "<movie><title>Léon</title></movie>".encode("utf-16")
    assert read_nfo(_write(tmp_path, "c.nfo", bom16)).items[0].title == "Léon"
    bom8 = b"\xef\xbb\xbf" + "<movie><title>Léon</title></movie>".encode()
    assert read_nfo(_write(tmp_path, "d.nfo", bom8)).items[0].title == "Léon"


def test_odd_values_do_not_raise() -> None:
    nfo = b"""<movie><title> </title><year>abc</year><runtime>2h 16m</runtime>
    <premiered>1999-13-45</premiered><rating>NaN</rating><userrating>inf</userrating>
    <ratings><rating name="imdb"><value>x</value></rating></ratings>
    <actor><role>No name</role></actor><set>Plain Set Name</set></movie>"""
    (movie,) = parse_nfo(nfo).items
    assert movie.title is None and movie.year is None and movie.premiered is None
    assert movie.runtime == 2
    assert movie.ratings == () and movie.user_rating is None
    assert movie.actors == ()
    assert movie.set_name == "Plain Set Name"


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2000))
def test_no_bytes_raise(data: bytes) -> None:
    assert isinstance(parse_nfo(data), NfoResult)


_fragments = st.sampled_from(
    [
        "<movie>",
        "</movie>",
        "<episodedetails>",
        "</episodedetails>",
        "<title>",
        "</title>",
        "<uniqueid type='imdb' default='true'>",
        "</uniqueid>",
        "<actor><name>",
        "</name></actor>",
        "<ratings><rating name='x'><value>",
        "</value></rating></ratings>",
        "<!DOCTYPE movie [<!ENTITY a 'b'>]>",
        "<?xml version='1.0'?>",
        "&amp;",
        "&a;",
        "<![CDATA[",
        "]]>",
        "tt0133093",
        "https://www.themoviedb.org/movie/603",
        "1999",
        "\x00",
        "\udce9",
    ]
)


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.one_of(_fragments, st.text(max_size=20)), max_size=40))
def test_no_xmlish_text_raises(parts: list[str]) -> None:
    data = "".join(parts).encode("utf-8", "surrogateescape")
    result = parse_nfo(data)
    assert result.ok or result.error
