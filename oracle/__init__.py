"""The FLB oracle service: turns on-chain submissions into finalized rounds, crash-safely."""
