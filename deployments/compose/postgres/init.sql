-- One database per service (run once, when the postgres volume is new).
CREATE DATABASE choreo_account;
CREATE DATABASE choreo_user;
CREATE DATABASE choreo_notification;
