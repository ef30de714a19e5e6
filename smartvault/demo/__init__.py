"""``smartvault demo``: the whole cycle on an embedded, simulated AWS account.

:mod:`~smartvault.demo.sandbox` makes the account (moto, in this process) and the walls
around it; :mod:`~smartvault.demo.fleet` seeds a fleet with backdated history;
:mod:`~smartvault.demo.script` runs the real commands on it, one step at a time. It sits
between the engine and the CLI: it is handed the root command group to run, so it
never imports the CLI that imports it.
"""
