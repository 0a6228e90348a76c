//! The race comparison, bounded for CI: ListAllDomains replays exactly under churn, the legacy enumeration shows its anomalies.
