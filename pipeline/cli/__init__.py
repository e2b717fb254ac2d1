"""cli: the `smtp-auth` command (`main`), its reports in the terminal (`report`) and the
whole local stack of `smtp-auth run` (`stack`). Settings are read here, once.

May import anything below it: it is an entry point.
"""
