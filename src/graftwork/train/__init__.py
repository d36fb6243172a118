"""The one staged trainer every task and strategy trains with, and its callbacks."""
