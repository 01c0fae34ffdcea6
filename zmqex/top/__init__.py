"""``zmqex-top``: a live view of one node in a terminal.

Split sans-I/O: :mod:`~zmqex.top.view` is the state of the screen and how each
thing the node says changes it (pure), :mod:`~zmqex.top.render` draws a view
at a given size (pure), and :mod:`~zmqex.top.app` does the I/O: the node's
streams, the keyboard and the terminal.
"""
