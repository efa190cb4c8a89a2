"""Static assets of the dashboard page (HTML, CSS, JS), shipped as package data."""
