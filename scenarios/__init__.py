"""The chaos suite: one pytest file per fault family, parametrized by recovery mode."""
