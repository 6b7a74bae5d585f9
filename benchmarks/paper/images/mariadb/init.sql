CREATE DATABASE IF NOT EXISTS bench;
-- With skip-name-resolve, TCP clients match on the address (127.0.0.1) and
-- socket clients on localhost: create both.
CREATE USER IF NOT EXISTS 'bench'@'127.0.0.1' IDENTIFIED BY 'bench';
CREATE USER IF NOT EXISTS 'bench'@'localhost' IDENTIFIED BY 'bench';
GRANT ALL PRIVILEGES ON bench.* TO 'bench'@'127.0.0.1';
GRANT ALL PRIVILEGES ON bench.* TO 'bench'@'localhost';
FLUSH PRIVILEGES;
