"""A Jepsen-style nemesis: real node processes, a workload that records a history, faults
scheduled from a seed, and a checker that judges the history against every replica.

One job per module:

* ``history``  what the traders asked and what they were told, with times;
* ``workload`` one trader thread per node, placing and cancelling orders;
* ``netns``    network namespaces, a bridge and veth pairs (partitions, slow links);
* ``disk``     a small tmpfs per node's data directory (a full disk);
* ``cluster``  the node processes, on loopback or in namespaces;
* ``faults``   each kind of fault: what it needs, how it starts and heals;
* ``schedule`` which faults, on which nodes, for how long, from a seed;
* ``nemesis``  carrying the schedule out, and timing each recovery after a heal;
* ``checker``  what must hold at the end;
* ``cleanup``  undoing namespaces, links, mounts and nodes, also after a killed run;
* ``run``      one whole run: cluster, traders, nemesis, convergence, checker, summary.

``python -m tests.nemesis --seconds N --seed S`` runs a long schedule; the short ones are
tests in ``test_nemesis.py`` (README, "Nemesis").
"""
