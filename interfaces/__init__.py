"""Stack phases into interfaces and full cells with region tags and strain reports (pure builders)."""
