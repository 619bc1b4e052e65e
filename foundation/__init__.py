"""The ground every layer stands on, harness and system under test alike: error classes and the one way to wait."""
