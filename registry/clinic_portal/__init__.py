"""The clinic portal ``/clinic``: examinations entered, signed and followed up in the browser."""
