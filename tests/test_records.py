import tracemalloc

from Tools.schema.records import JsonlAppender, iter_jsonl, write_jsonl_atomic


def test_reader_tolerates_bom_crlf_and_blank_lines_and_goes_on_after_bad_lines(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\r\n  \n{broken\n\xff\xfe\n[1]\n{"b": 2}')
    lines = list(iter_jsonl(path))
    assert [(l.number, l.record, l.error.code if l.error else None) for l in lines] == [
        (1, {"a": 1}, None),
        (4, None, "E_INVALID_JSON"),
        (5, None, "E_ENCODING"),
        (6, [1], None),
        (7, {"b": 2}, None),
    ]


def test_memory_stays_bounded_on_a_100_mb_line(tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "wb") as handle:
        handle.write(b'{"ok": 1}\n{"x": "')
        chunk = b"a" * (1 << 20)
        for _ in range(100):
            handle.write(chunk)
        handle.write(b'"}\n{"ok": 2}\n')
    tracemalloc.start()
    lines = list(iter_jsonl(path, max_line_bytes=4 << 20))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [l.record for l in lines] == [{"ok": 1}, None, {"ok": 2}]
    assert lines[1].error.code == "E_LINE_TOO_LONG"
    assert peak < 20 << 20


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl_atomic(path, [{"a": 1}])

    def broken():
        yield {"a": 2}
        raise RuntimeError("disk gone")

    try:
        write_jsonl_atomic(path, broken())
    except RuntimeError:
        pass
    assert path.read_text() == '{"a": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_appender_flushes_each_record(tmp_path):
    path = tmp_path / "stream.jsonl"
    appender = JsonlAppender(path)
    appender.write({"n": 1})
    assert path.read_text() == '{"n": 1}\n'  # visible before close: a crash loses nothing written
    appender.close()


def test_files_written_as_a_pair_are_all_or_nothing(tmp_path):
    from Tools.schema.records import write_jsonl_files_atomic

    out, side, stale = tmp_path / "out.jsonl", tmp_path / "out.leftover.jsonl", tmp_path / "stale.jsonl"
    write_jsonl_files_atomic({out: [{"a": 1}], side: [{"b": 1}]})
    stale.write_text("{}\n")

    try:  # a record json cannot write: neither file changes, the stale one stays, no temporary file is left
        write_jsonl_files_atomic({out: [{"a": 2}], side: [{"x": {1, 2}}], stale: None})
    except TypeError:
        pass
    assert (out.read_text(), side.read_text(), stale.exists()) == ('{"a": 1}\n', '{"b": 1}\n', True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out.leftover.jsonl", "stale.jsonl"]
    assert write_jsonl_files_atomic({out: [{"a": 3}, {"a": 4}], stale: None}) == {out: 2}
    assert out.read_text() == '{"a": 3}\n{"a": 4}\n' and not stale.exists()
