"""`resilience validate`: catch changes that lock up GitOps (immutable fields, builds, dependsOn) before commit."""
