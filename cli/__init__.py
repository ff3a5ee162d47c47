"""Thin command-line front ends: `titans-ts` (cli.ts) and `titans-dna` (cli.dna)."""
