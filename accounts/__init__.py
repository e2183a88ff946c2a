"""Who uses TwinPortal: clinicians, data managers and administrators, and how they sign in."""
