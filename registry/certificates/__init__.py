"""Certificates: destination rulesets, certificate ids, SMART Health Cards, QR codes and PDFs."""
