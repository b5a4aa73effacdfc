"""The Jepsen-style checker's analysis on hand-made histories: a clean
history passes, and each anomaly is found (and only it)."""

import pytest
from jepsen_checker import ANOMALIES, BatchHeader, History, batch_header, check


def clean_history():
    """Two partitions, values a0..a3 and b0..b2, all acknowledged, one
    maybe-written value that made it (c0) and one that did not (c1), a
    definite failure never read (d0), two consumers, two SQL replicas and a
    Kafka read, leaders named by two observers."""
    h = History()
    logs = {0: ["a0", "a1", "a2", "a3", "c0"], 1: ["b0", "b1", "b2"]}
    for p, values in logs.items():
        for offset, v in enumerate(values):
            h.send(v, p)
            if v.startswith("c"):
                h.fail(v, "timed out")
            else:
                h.ack(v, offset)
    h.send("c1", 1)
    h.fail("c1", "timed out")
    h.send("d0", 1)
    h.fail("d0", "message too large", definite=True)
    for p, values in logs.items():
        for offset, v in enumerate(values[:3]):
            h.poll("consumer-1", p, offset, v)
    # a consumer that starts over after a seek
    h.poll("consumer-2", 0, 0, "a0")
    h.poll("consumer-2", 0, 1, "a1")
    h.seek("consumer-2", 0, 0)
    h.poll("consumer-2", 0, 0, "a0")
    for source in ("sql@1", "sql@2", "kafka"):
        for p, values in logs.items():
            h.final_read(source, p, list(enumerate(values)))
    for node in (1, 2):
        for p, values in logs.items():
            h.replica(node, p, [(o, v.encode()) for o, v in enumerate(values)])
    for observer in (1, 2):
        h.leader(observer, 0, 1, 1)
        h.leader(observer, 0, 2, 2)
        h.leader(observer, 1, 1, 2)
    h.leader(3, 0, 3, -1)   # no leader at epoch 3: not a conflict
    return h, logs


def only(result, name):
    assert not result.valid
    assert set(result.anomalies) == {name}, result.report()
    return result.anomalies[name]


def test_a_clean_history_is_valid():
    h, _ = clean_history()
    result = check(h)
    assert result.valid, result.report()
    assert result.stats["acked"] == 7
    assert result.stats["indefinite"] == 2
    assert result.stats["failed"] == 1


def test_an_acknowledged_value_missing_from_one_replica_is_a_lost_write():
    h, logs = clean_history()
    # replica 2 lost a3 (the last record): every other check is happy
    h.final_read("sql@2", 0, [(o, v) for o, v in enumerate(logs[0]) if v != "a3"])
    found = check(h).anomalies
    assert set(found) == {"lost-write", "gap"}  # a3's offset is missing too
    assert [f["value"] for f in found["lost-write"]] == ["a3"]
    assert found["lost-write"][0]["source"] == "sql@2"


def test_an_acknowledgement_without_an_offset_still_needs_its_value_read():
    h, logs = clean_history()
    h.ack("c0", None)       # c0 was maybe-written: now acknowledged, offset unknown
    h.ack("a2", -1)
    assert check(h).valid, check(h).report()
    h.send("e0", 1)
    h.ack("e0", None)
    found = only(check(h), "lost-write")
    assert {f["value"] for f in found} == {"e0"}


def test_a_value_at_two_offsets_is_a_duplicate():
    h, logs = clean_history()
    h.final_read("kafka", 1, list(enumerate(logs[1] + ["b1"])))
    found = only(check(h), "duplicate")
    assert found[0]["value"] == "b1" and set(found[0]["offsets"]) == {1, 3}


def test_one_offset_with_two_values_is_an_inconsistent_offset():
    h, _ = clean_history()
    # a consumer saw b2 at offset 1, where the log holds b1
    h.poll("consumer-3", 1, 1, "b2")
    found = check(h).anomalies
    assert any(f["offset"] == 1 and set(f["values"]) == {"b1", "b2"}
               for f in found["inconsistent-offset"])
    assert set(found) <= {"inconsistent-offset", "duplicate"}


def test_a_hole_in_a_final_read_is_a_gap():
    h, logs = clean_history()
    h.final_read("sql@1", 1, [(0, "b0"), (2, "b2")])
    found = check(h).anomalies
    assert found["gap"] == [{"partition": 1, "source": "sql@1", "missing": [1], "count": 1}]
    assert set(found) == {"gap", "lost-write"}  # b1 was acknowledged


def test_a_consumer_jumping_over_records_is_a_poll_skip():
    h, _ = clean_history()
    h.poll("consumer-3", 0, 0, "a0")
    h.poll("consumer-3", 0, 3, "a3")
    found = only(check(h), "poll-skip")
    assert found[0]["skipped"] == [1, 2]


def test_a_consumer_going_back_without_a_seek_is_a_nonmonotonic_poll():
    h, _ = clean_history()
    h.poll("consumer-3", 0, 1, "a1")
    h.poll("consumer-3", 0, 2, "a2")
    h.poll("consumer-3", 0, 1, "a1")
    found = only(check(h), "nonmonotonic-poll")
    assert found[0]["after"] == 2 and found[0]["offset"] == 1


def test_reading_a_value_whose_send_failed_for_sure_is_an_aborted_read():
    h, logs = clean_history()
    for source in ("sql@1", "sql@2", "kafka"):
        h.final_read(source, 1, list(enumerate(logs[1] + ["d0"])))
    found = only(check(h), "aborted-read")
    assert {f["value"] for f in found} == {"d0"}


def test_reading_a_value_nobody_sent_is_an_unexpected_read():
    h, logs = clean_history()
    h.poll("consumer-1", 1, 3, "zz")
    for source in ("sql@1", "sql@2", "kafka"):
        h.final_read(source, 1, list(enumerate(logs[1] + ["zz"])))
    found = only(check(h), "unexpected-read")
    assert {f["value"] for f in found} == {"zz"}


def test_two_leaders_for_one_epoch_is_a_leader_conflict():
    h, _ = clean_history()
    h.leader(3, 0, 2, 3)
    found = only(check(h), "leader-conflict")
    assert found == [{"partition": 0, "epoch": 2, "leaders": [2, 3]}]


def test_replicas_with_different_bytes_diverge():
    h, logs = clean_history()
    batches = [(o, v.encode()) for o, v in enumerate(logs[1])]
    batches[2] = (2, b"b2 but other bytes")
    h.replica(2, 1, batches)
    found = only(check(h), "replica-divergence")
    assert found[0]["partition"] == 1 and found[0]["first_difference"] == 2


def test_a_replica_missing_its_tail_diverges():
    h, logs = clean_history()
    h.replica(2, 0, [(o, v.encode()) for o, v in enumerate(logs[0][:-1])])
    found = only(check(h), "replica-divergence")
    assert found[0]["batches"] == (5, 4)


def batch_v2(base_offset, epoch, payload=b"records", producer=(-1, -1, -1), count=1):
    """A RecordBatch v2 header (leader epoch, producer id, producer epoch,
    base sequence, count) and a payload in place of the records."""
    pid, pepoch, seq = producer
    rest = (epoch.to_bytes(4, "big", signed=True) + b"\x02" + bytes(4) + bytes(2)
            + (count - 1).to_bytes(4, "big") + bytes(16)
            + pid.to_bytes(8, "big", signed=True) + pepoch.to_bytes(2, "big", signed=True)
            + seq.to_bytes(4, "big", signed=True) + count.to_bytes(4, "big") + payload)
    return base_offset.to_bytes(8, "big") + len(rest).to_bytes(4, "big") + rest


def test_a_batch_header_names_its_writer():
    header = batch_header(batch_v2(10, 4, producer=(7, 2, 30), count=3))
    assert header == BatchHeader(producer_id=7, producer_epoch=2, base_sequence=30,
                                 last_offset_delta=2, leader_epoch=4)
    assert header.writer_of(10, 12) == (7, 2, 32, 4)
    assert batch_header(b"not a batch") is None


def stored_twice(first_writer, second_writer, acked_at):
    """clean_history's partition 1 with b1 stored again at offset 3 by
    second_writer (producer id, producer epoch, sequence), b1's first copy
    by first_writer, the other records by producer 7 epoch 0 from sequence
    0; b1 acknowledged at acked_at."""
    h, logs = clean_history()
    log = logs[1] + ["b1"]
    writers = [(7, 0, 0), first_writer, (7, 0, 2), second_writer]
    h.ack("b1", acked_at)
    for source in ("sql@1", "sql@2", "kafka"):
        h.final_read(source, 1, list(enumerate(log)))
    for node in (1, 2):
        h.replica(node, 1, [(o, batch_v2(o, 1, v.encode(), w)) for o, (v, w)
                            in enumerate(zip(log, writers))])
    return h


def test_a_value_stored_twice_by_one_producer_epoch_is_a_broker_duplicate():
    result = check(stored_twice((7, 0, 1), (7, 0, 1), acked_at=1))
    found = only(result, "duplicate")
    by_value = [f for f in found if f.get("value") == "b1"]
    assert by_value[0]["copies"][3] == {"producer": 7, "producer_epoch": 0, "sequence": 1,
                                        "leader_epoch": 1}
    # the headers alone show sequence 1 of producer 7 epoch 0 stored twice
    by_sequence = [f for f in found if "sequences" in f]
    assert by_sequence and by_sequence[0]["offsets"] == (1, 3)
    assert not result.classified


def test_a_value_resent_under_a_bumped_producer_epoch_is_classified_not_invalid():
    # the first copy was never acknowledged; the client bumped its epoch
    # and sent b1 again from sequence 0, acknowledged at offset 3
    result = check(stored_twice((7, 0, 1), (7, 1, 0), acked_at=3))
    assert result.valid, result.report()
    resent = result.classified["resent-after-epoch-bump"]
    assert [(f["value"], sorted(f["copies"])) for f in resent] == [("b1", [1, 3])]
    assert resent[0]["copies"][3]["producer_epoch"] == 1
    assert result.stats["resent_after_epoch_bump"] == 1
    assert "resent-after-epoch-bump" in result.report()


def test_a_duplicate_shows_what_the_broker_answered_the_first_copy():
    h = stored_twice((7, 0, 1), (7, 1, 0), acked_at=3)
    h.client_event("p0", "MSGSET [p0]: 127.0.0.1:1/1: t [1]: MessageSet with 2 message(s) "
                   "(MsgId 1, BaseSeq 0) encountered error: Local: Broker transport failure "
                   "(actions Refresh,MsgPossiblyPersisted)", "produce-answer:transport")
    h.client_event("p0", "MSGSET [p0]: 127.0.0.1:1/1: t [0]: MessageSet with 2 message(s) "
                   "(MsgId 1, BaseSeq 0) encountered error: other partition (actions Retry)")
    resent = check(h).classified["resent-after-epoch-bump"]
    assert [a[1:] for a in resent[0]["first_copy_answers"]] == [
        ("p0", "Local: Broker transport failure")]
    assert h.info["produce-answer:transport"] == 1


def test_an_acknowledged_value_stored_again_after_an_epoch_bump_is_a_broker_duplicate():
    # the client was told b1 was written at offset 1: it had no reason to
    # send it again, whatever its epoch
    result = check(stored_twice((7, 0, 1), (7, 1, 0), acked_at=1))
    assert [f["value"] for f in only(result, "duplicate")] == ["b1"]


def test_a_value_stored_again_by_another_producer_id_is_a_broker_duplicate():
    result = check(stored_twice((7, 0, 1), (8, 0, 0), acked_at=3))
    assert [f["value"] for f in only(result, "duplicate")] == ["b1"]


def test_leader_epochs_going_down_along_a_replica_are_an_epoch_regress():
    h, logs = clean_history()
    good = [(o, batch_v2(o, e)) for o, e in ((0, 1), (1, 1), (2, 3))]
    bad = [(o, batch_v2(o, e)) for o, e in ((0, 1), (1, 3), (2, 2))]
    h.replica(1, 1, good)
    h.replica(2, 1, good)
    assert check(h).valid
    h.replica(1, 1, bad)
    h.replica(2, 1, bad)
    found = only(check(h), "epoch-regress")
    assert [(f["node"], f["offset"], f["epoch"]) for f in found] == [(1, 2, 2), (2, 2, 2)]


def test_a_value_read_in_another_partition_is_reported():
    h, logs = clean_history()
    h.poll("consumer-1", 1, 3, "a0")
    found = check(h).anomalies
    assert found["wrong-partition"][0]["value"] == "a0"


def test_a_value_sent_twice_is_refused_by_the_history():
    h = History()
    h.send("x", 0)
    with pytest.raises(ValueError):
        h.send("x", 1)


def test_every_anomaly_has_a_test():
    names = {n.replace("-", "_") for n in ANOMALIES}
    tested = {name for name in globals() if name.startswith("test_")}
    words = {"lost_write": "lost_write", "duplicate": "duplicate",
             "inconsistent_offset": "inconsistent_offset", "gap": "gap",
             "poll_skip": "poll_skip", "nonmonotonic_poll": "nonmonotonic_poll",
             "aborted_read": "aborted_read", "unexpected_read": "unexpected_read",
             "leader_conflict": "leader_conflict", "replica_divergence": "diverge",
             "epoch_regress": "epoch_regress",
             "wrong_partition": "another_partition"}
    assert set(words) == names
    for name, word in words.items():
        assert any(word in t for t in tested), f"no test for {name}"
