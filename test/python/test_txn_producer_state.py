"""The producer state of a partition keeps, as Kafka's ProducerStateEntry,
the time of each producer's newest batch or transaction marker and the
coordinator epoch of its newest marker (issue 14): the streamlog.producers
view and DescribeProducers show them, and a restart rebuilds them from the
stored batches."""

import time

from test_txn_log import append, marker


def producers(conn, topic):
    return {r[0]: r[1:] for r in conn.execute(
        "SELECT producer_id, producer_epoch, last_sequence, "
        "       (extract(epoch FROM last_timestamp) * 1000)::bigint, coordinator_epoch "
        "  FROM streamlog.producers WHERE topic = %s AND partition = 0", (topic,))}


def test_last_timestamp_and_coordinator_epoch(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("pstate")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    before = int(time.time() * 1000) - 1
    append(conn, topic, 0, 100, 2, 0, ["a", "b"])
    append(conn, topic, 0, 200, 0, 0, ["c"])
    state = producers(conn, topic)
    assert state[100][:2] == (2, 1) and state[200][:2] == (0, 0)
    assert state[100][2] >= before and state[100][3] is None
    assert marker(conn, topic, 0, 100, 2, True, coordinator_epoch=7) == 3
    assert marker(conn, topic, 0, 200, 0, False, coordinator_epoch=9) == 4
    after = producers(conn, topic)
    # a marker moves the time and sets the coordinator epoch, not the sequence
    assert after[100][:2] == (2, 1) and after[100][3] == 7
    assert after[200][:2] == (0, 0) and after[200][3] == 9
    assert after[100][2] >= state[100][2]
    # the producer goes on where it was
    append(conn, topic, 0, 100, 2, 2, ["d"])
    assert producers(conn, topic)[100][:2] == (2, 2)
    expected = producers(conn, topic)
    conn.close()

    # rebuilt from the stored batches and markers
    srv.restart()
    conn = srv.connect()
    assert producers(conn, topic) == expected
    # a marker as the newest: its epoch is found in its batch
    assert marker(conn, topic, 0, 100, 2, False, coordinator_epoch=8) == 6
    expected = producers(conn, topic)
    assert expected[100][3] == 8
    conn.close()
    srv.restart()
    conn = srv.connect()
    assert producers(conn, topic) == expected
    conn.close()
