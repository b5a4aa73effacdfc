"""Kafka transactions under faults (issue 14): a consume-transform-produce
loop with confluent-kafka, its process and the server killed with SIGKILL
at random points, must turn every input record into exactly one committed
output record (eos_chaos.py).  The seed is printed on failure; set
STREAMLOG_EOS_SEED to replay one.  bench/transactions/eos_chaos.py runs
the same for longer."""

import os
import random

from eos_chaos import EosChaos

CONF = {
    "streamlog.transaction_coordinator": "on",
    # the cleaner runs the coordinator's periodic pass after each of its own
    "streamlog.retention_check_interval": "100ms",
}


def test_consume_transform_produce_survives_kill9(make_server, unique_name):
    seed = int(os.environ.get("STREAMLOG_EOS_SEED", random.randrange(1 << 30)))
    print(f"seed {seed}")
    srv = make_server(conf=CONF)
    chaos = EosChaos(srv, unique_name("eos"), seed)
    try:
        chaos.setup()
        chaos.run(rounds=15)
        result = chaos.finish()
    finally:
        chaos.cleanup()
    print(result)
    assert result["faults"] == {"client": 10, "server": 5}
