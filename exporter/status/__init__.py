"""The public status page and planned maintenance: what the platform's own users may know."""
