"""The in-show cart: how a viewer's cart is handed to the shop at checkout."""
