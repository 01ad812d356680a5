"""The authority's dashboards, audit log viewer, ledger and audit-chain health, and the sandbox clock page."""
