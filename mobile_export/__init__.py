"""Everything that goes to phones: Collect settings QR codes, offline bundles, per-collector media."""
