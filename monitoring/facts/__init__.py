"""What an alert means, without a process: the shipped rules and their promises, a run's pages and due alerts,
alert phases on its timeline, coverage. Imports only the Flux model and the ground below it."""
