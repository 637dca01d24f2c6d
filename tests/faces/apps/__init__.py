"""The apps the contract suite serves: one module per face, the same routes in each."""
