"""The two-node scenario the algorithm tests run with each proposal pair (``IKE`` and ``ESP`` are replaced)."""

SCENARIO = """\
name: algorithms
seed: 3
duration: 130s
nodes:
  client: {addresses: [10.0.0.1]}
  gateway: {addresses: [10.0.0.2]}
links:
  - between: [client, gateway]
    delay: 10ms
connections:
  vpn:
    initiator: client
    responder: gateway
    ike: {proposals: "IKE", rekey_time: 60s, rand_time: 0}
    child: {proposals: "ESP", rekey_time: 40s, rand_time: 0}
traffic:
  - {connection: vpn, direction: both, pattern: constant, rate: 2, size: 500}
"""
