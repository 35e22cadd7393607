"""Leaders' private menus: /admin and everything under it."""
