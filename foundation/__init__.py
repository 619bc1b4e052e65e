"""The ground every layer stands on, harness and system under test alike: error classes, the one way to wait, the one
way to run a process beside this one, and the conventions of every command."""
