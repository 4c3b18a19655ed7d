// Tests for this area land here.
