"""The operator's log as a person reads it: opening line, bounded short progress lines, closing summary."""

from __future__ import annotations

import re

import pytest
from upath import UPath

from airflow_provider_unifapi.collector import (
    Budget,
    HashtagVideoCollector,
    ObjectStorageOutput,
    PagingSettings,
    ProgressLog,
    dollars,
)
from airflow_provider_unifapi.collector import progress as progress_module
from airflow_provider_unifapi.storage.checkpoint import Checkpoint
from airflow_provider_unifapi.storage.run_folder import RunFolder
from tests.conftest import assert_no_key, sandbox_client

LONG_TAG, LONG_VIDEOS = "6161", 2400
PAGE_LINE = re.compile(r"page [\d,]+: ")
MONEY = re.compile(
    r"spent ([\d,]+) credits \((\$[\d,.]+)\) of max_credits ([\d,]+) = (\d+) credits charged \(\+(\d+)"
)


class Lines:
    """A logger that keeps the formatted lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg, *args):
        self.lines.append(msg % args if args else msg)

    def pages(self) -> list[str]:
        return [line for line in self.lines if PAGE_LINE.match(line)]


@pytest.mark.parametrize(
    ("credits", "text"),
    [(0, "$0.00"), (1, "$0.001"), (10, "$0.01"), (452, "$0.452"), (5000, "$5.00"), (1_234_567, "$1,234.567")],
)
def test_dollars_are_exact(credits, text):
    assert dollars(credits) == text  # 1 credit = $0.001, never rounded away


def test_a_progress_line_stays_short_at_the_extremes():
    cp = Checkpoint(hashtag_id="7106594312292", output_format="jsonl.gz", pages=99_999, records=4_999_950)
    cp.credits_charged, cp.possibly_billed_credits = 4_999_000, 999
    log = ProgressLog(Lines(), Budget(max_credits=5_000_000))
    log._records_this_try = 4_999_950
    line = log.page_line(cp, 50, 999_999_999, elapsed=50.0)  # 99,999 records/s
    assert "4,999,999 of 5,000,000 credits ($4,999.999)" in line
    assert len(line) <= 120, (len(line), line)
    no_cap = ProgressLog(Lines(), Budget()).page_line(cp, 50, None, elapsed=1.0)
    assert "4,999,999 credits ($4,999.999)" in no_cap and len(no_cap) <= 120


def test_the_rate_is_bounded_by_pages_and_by_time():
    now = [0.0]
    out = Lines()
    log = ProgressLog(out, Budget(max_credits=100_000), clock=lambda: now[0])
    cp = Checkpoint(hashtag_id="1", output_format="jsonl")
    log.opening(cp, url="file:///x/", page_size=50)
    for n in range(1, 1001):  # a fast run: 1,000 pages in 10 s
        cp.pages, cp.records, cp.credits_charged = n, n * 50, n * 50
        now[0] += 0.01
        log.page(cp, 50, 1_000_000 - n * 50, last=n == 1000)
    logged = [int(PAGE_LINE.match(line).group(0)[5:-2].replace(",", "")) for line in out.pages()]
    # the first 10, then every 100th, and the last
    assert logged == [*range(1, 11), *range(110, 1000, 100), 1000]
    slow = Lines()
    now[0] = 0.0
    log = ProgressLog(slow, Budget(), clock=lambda: now[0])
    log.opening(cp, url=None, page_size=50)
    for n in range(1, 41):  # a slow API: a page every 20 s
        cp.pages = n
        now[0] += 20
        log.page(cp, 50, None, last=False)
    assert len(slow.pages()) == 10 + 10  # the first 10, then one a minute (every 3rd page)


def test_a_long_real_run_logs_a_bounded_number_of_short_lines(unifapi_conn, tmp_path):
    unifapi_conn.add_hashtag(LONG_TAG, "longrun", LONG_VIDEOS)
    out = Lines()
    client = sandbox_client(unifapi_conn)
    try:
        collector = HashtagVideoCollector(
            client,
            LONG_TAG,
            output=ObjectStorageOutput(
                RunFolder(UPath(f"file://{tmp_path}/long"), "jsonl"), url="file:///long"
            ),
            budget=Budget(max_credits=1_000_000),
            paging=PagingSettings(page_size=2),  # ~1,200+ pages
            logger=out,
        )
        summary = collector.run()
    finally:
        client.close()
    pages = summary["pages"]
    assert pages > 1000
    lines = out.pages()
    first_and_every = progress_module.FIRST_PAGES + pages // progress_module.EVERY_PAGES + 1
    assert progress_module.FIRST_PAGES <= len(lines) <= first_and_every + 5  # + a line a minute at most
    assert all(len(line) <= 120 for line in out.lines if PAGE_LINE.match(line)), max(map(len, lines))
    assert lines[-1].startswith(f"page {pages:,}: ")  # the page the run stopped on is always shown
    assert "of 1,000,000 credits ($" in lines[0]


def test_operator_log_opens_shows_money_and_closes_with_every_credit(
    unifapi_conn, dag_runner, tmp_path, capfd
):
    unifapi_conn.add_hashtag("6262", "logtest", 330)
    unifapi_conn.faults({"kind": "reset", "at": [3]})  # a lost response: possibly billed, retried
    path = dag_runner.write(
        "logs_dag",
        f"""
        TikTokHashtagVideosOperator(
            task_id="collect", hashtag_name="logtest", output_path="file://{tmp_path}/l/", max_credits=2000,
            retries=2, retry_delay=0,
        )
        """,
    )
    result = dag_runner.run(path, capsys=capfd)
    assert result.state == "success"
    text = result.log_text
    summary = result.xcoms["collect"]
    opening = next(line for line in text.splitlines() if "Collecting hashtag" in line)
    assert f"#logtest (id 6262) into file://{tmp_path}/l/" in opening
    assert "budget 2,000 credits ($2.00)" in opening
    # the messages themselves, without Airflow's prefix and suffix
    progress = re.findall(r"page [\d,]+: .*? rec/s", text)
    assert progress and all(" of 2,000 credits ($" in line for line in progress)
    assert max(map(len, progress)) <= 120
    spent, spent_dollars, cap, charged, possibly = MONEY.search(text).groups()
    assert int(charged) == summary["credits_charged"] and int(possibly) == summary["possibly_billed_credits"]
    assert int(possibly) >= 1  # the reset's worst case is accounted for, not lost
    assert int(spent.replace(",", "")) == int(charged) + int(possibly) and cap == "2,000"
    assert spent_dollars == dollars(int(charged) + int(possibly))
    # the API's ledger lies between what was confirmed and the worst case
    assert int(charged) <= unifapi_conn.credits_charged() <= int(charged) + int(possibly)
    assert "request_id" not in "\n".join(progress)  # counters only: no body, no ids
    assert_no_key(text)


def test_a_batch_log_names_its_hashtags_paces_pages_across_chains_and_accounts_for_every_credit(
    unifapi_conn, dag_runner, tmp_path, capfd
):
    from tests.test_batch import batch_dag

    tags = {"6301": 2600, "6302": 2600, "6303": 300}
    unifapi_conn.reset(hashtags=[{"id": k, "name": f"logb{k}", "video_count": v} for k, v in tags.items()])
    path = batch_dag(
        dag_runner,
        "logs_batch",
        hashtags=list(tags),
        output_path=f"file://{tmp_path}/b",
        max_concurrency=3,
        max_credits=4000,
    )
    result = dag_runner.run(path, capsys=capfd)
    assert result.ti_state("batch") == "success"
    text = result.log_text
    assert re.search(r"Collecting 3 hashtags into .*: batch budget 4,000 credits \(\$4\.00\)", text)
    # every hashtag's lines name it: its opening, each progress line, its closing
    for tag in tags:
        assert re.search(
            rf"Collecting hashtag {tag} into .*batch budget 4,000 credits \(\$4\.00\) shared", text
        )
    pages = re.findall(r"(\d+) page [\d,]+: .*? rec/s", text)
    assert pages and set(pages) <= set(tags)
    assert "no max_credits" not in text
    paid = len(unifapi_conn.calls("videos"))
    assert paid > 60 and len(pages) < paid / 2  # paced across the chains, not a line per page
    closing = re.search(
        r"Batch of 3 hashtags: (\d+) done, (\d+) stopped, (\d+) skipped, (\d+) failed .*?spent ([\d,]+) credits "
        r"\(\$[\d.,]+\) over all tries = (\d+) charged \+ (\d+) possibly billed \+ (\d+) for names",
        text,
    )
    assert closing is not None
    done, stopped, skipped, failed, spent, charged, possibly, names = closing.groups()
    assert int(done) + int(stopped) + int(skipped) + int(failed) == 3 and int(stopped) >= 1
    assert (
        int(spent.replace(",", ""))
        == int(charged) + int(possibly) + int(names)
        == unifapi_conn.credits_charged()
    )
