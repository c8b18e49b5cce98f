"""Connected accounts: organizations' upstream MCP servers, their credentials and their tools (DESIGN §8)."""
