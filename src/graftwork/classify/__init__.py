"""Classification: the fit's steps over one state (:mod:`.fit`), and the task the staged trainer trains
(:mod:`.task`)."""
