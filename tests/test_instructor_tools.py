"""What the formgrader and nbgrader's exchange need from the course: an exchange folder
that exists, names in the gradebook, feedback regenerated after hand grading, and a
feedback configuration without warnings. Real nbgrader CLI on the tiny assignment."""
from __future__ import annotations

import re
import stat

import pytest
from nbgrader.api import Gradebook

from coursectl.cli import main
from coursectl.grading.gradebook import add_student_names, open_gradebook
from coursectl.grading.intake import read_roster, split_name
from coursectl.nbg import CourseError, EXCHANGE_MODE, ensure_exchange, run_nbgrader
from fixtures.grading import tiny
from nbcourse import nbgrader, submit


@pytest.fixture(autouse=True)
def _own_exchange(monkeypatch):
    monkeypatch.delenv("COURSE_EXCHANGE", raising=False)  # every course its own ./exchange


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tiny.make_course(tmp_path_factory.mktemp("tools"))
    submit(course, "jdoe", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    nbgrader(course, "autograde", tiny.ASSIGNMENT)
    return course


def test_ensure_exchange_creates_a_shared_folder_and_leaves_others_alone(tmp_path):
    made = ensure_exchange(tmp_path / "a" / "exchange")
    assert made.is_dir() and stat.S_IMODE(made.stat().st_mode) == EXCHANGE_MODE
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    ensure_exchange(mine)
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700  # an existing folder is the admin's choice
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert not ensure_exchange(blocker / "exchange").exists()  # cannot be made: nbgrader reports it


def test_exchange_exists_for_list_and_release(graded):
    course = graded  # generate_assignment (in tiny.make_course) loaded the config, which made the exchange
    exchange = course / "exchange"
    assert exchange.is_dir() and stat.S_IMODE(exchange.stat().st_mode) == EXCHANGE_MODE
    nbgrader(course, "release_assignment", tiny.ASSIGNMENT)
    assert (exchange / "seqcourse" / "outbound" / tiny.ASSIGNMENT / "tiny.ipynb").is_file()
    listed = nbgrader(course, "list")  # what the formgrader runs before it shows Release/Collect
    assert f"seqcourse {tiny.ASSIGNMENT}" in listed.stdout + listed.stderr


@pytest.mark.parametrize("given, first, last", [
    ("Moreau, Alice", "Alice", "Moreau"),
    ("Ana María de la Cruz", "Ana María de la", "Cruz"),
    ("  Okafor ,  Bob Chidi ", "Bob Chidi", "Okafor"),
    ("Plato", "", "Plato"),
])
def test_split_name(given, first, last):
    assert split_name(given) == (first, last)


def test_roster_names_reach_the_gradebook(tmp_path):
    canvas = tmp_path / "canvas.csv"
    canvas.write_text('Student,ID,SIS User ID,SIS Login ID,Section\nPoints Possible,,,,\n'
                      '"Moreau, Alice",1001,S1,alice,A\n"Okafor, Bob",1002,S2,bob,A\n')
    plain = tmp_path / "plain.csv"
    plain.write_text("student_id,first_name,last_name,email\nalice,Alicia,Moreau-Lenz,am@uni.example\ncarol,,,\n")
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with open_gradebook(db) as gb:
        gb.add_student("alice")
        assert add_student_names(gb, read_roster(canvas)) == 2
        assert (gb.find_student("alice").last_name, gb.find_student("alice").first_name) == ("Moreau", "Alice")
        assert gb.find_student("bob").first_name == "Bob"  # enrolled, not yet submitted: listed by name
        assert add_student_names(gb, read_roster(plain)) == 1  # carol has no name to give
        alice = gb.find_student("alice")
        assert (alice.first_name, alice.last_name, alice.email) == ("Alicia", "Moreau-Lenz", "am@uni.example")
        assert len(gb.students) == 2


def _explain_score(course) -> str:
    html = (course / "feedback" / "jdoe" / tiny.ASSIGNMENT / "tiny.html").read_text()
    # the table of contents of nbgrader's feedback: '<a href="#explain">Written response</a> (Score: x / 2.0)'
    found = re.search(r'href="#explain">Written response</a> \(Score: ([\d.]+) / 2\.0\)', html)
    assert found, "no score line for the written answer in the feedback"
    return found.group(1)


def test_feedback_is_regenerated_after_hand_grading(graded):
    first = run_nbgrader(graded, "generate_feedback", tiny.ASSIGNMENT, "--force", quiet=True)
    log = first.stdout + first.stderr
    assert "not recognized" not in log, log  # e.g. display_data_priority on HideHiddenTests
    assert _explain_score(graded) == "0.0"  # before hand grading the written answer shows 0
    with Gradebook(f"sqlite:///{graded / 'gradebook.db'}") as gb:
        gb.find_grade("explain", "tiny", tiny.ASSIGNMENT, "jdoe").manual_score = 1.5
        gb.db.commit()
    assert main(["--course-dir", str(graded), "feedback", tiny.ASSIGNMENT]) == 0
    assert _explain_score(graded) == "1.5"


def test_feedback_needs_autograded_work(graded, capsys):
    assert main(["--course-dir", str(graded), "feedback", tiny.ASSIGNMENT, "--student", "nobody"]) == 2
    assert "run `course grade tiny` first" in capsys.readouterr().err
    with pytest.raises(CourseError, match="no assignment"):
        from coursectl.nbg import regenerate_feedback

        regenerate_feedback(graded, "a9_missing")
